"""`onboarding up`: run the whole product on this machine (Prefect, receiver, deployments)."""

from __future__ import annotations

import typer

from onboarding.cli._common import EXIT_CONFIG, EXIT_FAILED, console, fail, friendly_errors

__all__ = ["NO_CREDENTIALS", "register"]

NO_CREDENTIALS = (
    "no Partner API credentials: set D360_PARTNER_ID and D360_API_KEY (or D360_USERNAME and "
    "D360_PASSWORD), or pass --demo to run on the built-in sandbox"
)


def register(app: typer.Typer) -> None:
    """Add the `up` command to ``app``."""

    @app.command()
    def up(
        demo: bool = typer.Option(
            False,
            "--demo",
            help="Run on the built-in Partner API sandbox with a history database of its own "
            "under ONBOARDING_HOME; the callback and alert settings are ignored.",
        ),
        demo_minutes: float | None = typer.Option(
            None,
            "--demo-minutes",
            min=0.0,
            help="Stop by itself this many minutes after start-up and print a summary table.",
        ),
    ) -> None:
        """Run everything: a local Prefect server, the served deployments, the webhook receiver.

        Needs Partner API credentials (D360_PARTNER_ID with D360_API_KEY, or D360_USERNAME +
        D360_PASSWORD); without them it stops with exit code 3 unless --demo is given. The
        Prefect server it starts requires the auth string kept in ONBOARDING_HOME (default
        ./.onboarding), with its logs and state. Ctrl-C stops every process it started and
        exits 0.
        """
        from onboarding.launcher import ChildExited, LaunchError
        from onboarding.launcher import up as run_up
        from onboarding.settings import (
            load_hub_settings,
            load_settings,
            require_strong_webhook_token,
        )

        with friendly_errors():
            settings = load_settings()
            require_strong_webhook_token(settings.webhook_token)  # none set: `up` makes one
            hub = load_hub_settings()
            if not demo:
                if not hub.has_credentials or not hub.partner_id:
                    fail(NO_CREDENTIALS, EXIT_CONFIG)
                hub.require_credentials()
        try:
            code = run_up(settings, hub, demo=demo, demo_minutes=demo_minutes, console=console)
        except LaunchError as exc:
            fail(str(exc), exc.code)
        except ChildExited as exc:
            fail(str(exc), EXIT_FAILED)
        except KeyboardInterrupt:  # before `up` took over Ctrl-C (during the migration)
            console.print("stopped")
            code = 0
        raise typer.Exit(code)
