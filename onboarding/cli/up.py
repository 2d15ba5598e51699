"""`onboarding up`: run the whole product on this machine (Prefect, receiver, deployments)."""

from __future__ import annotations

import typer

from onboarding.cli._common import EXIT_FAILED, console, fail, friendly_errors

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the `up` command to ``app``."""

    @app.command()
    def up(
        demo_minutes: float | None = typer.Option(
            None,
            "--demo-minutes",
            min=0.0,
            help="Stop by itself this many minutes after start-up and print a summary table.",
        ),
    ) -> None:
        """Run everything: a local Prefect server, the served deployments, the webhook receiver.

        Without Partner API credentials (D360_API_KEY, or D360_USERNAME + D360_PASSWORD) it also
        runs the built-in sandbox with a demo scenario. Ctrl-C stops every process it started
        and exits 0. Local state (Prefect's database, logs) goes to ONBOARDING_HOME
        (default ./.onboarding).
        """
        from onboarding.launcher import ChildExited, LaunchError
        from onboarding.launcher import up as run_up
        from onboarding.settings import load_hub_settings, load_settings

        with friendly_errors():
            settings = load_settings()
            hub = load_hub_settings()
            if hub.has_credentials:
                hub.require_credentials()
        try:
            code = run_up(settings, hub, demo_minutes=demo_minutes, console=console)
        except LaunchError as exc:
            fail(str(exc), exc.code)
        except ChildExited as exc:
            fail(str(exc), EXIT_FAILED)
        except KeyboardInterrupt:  # before `up` took over Ctrl-C (during the migration)
            console.print("stopped")
            code = 0
        raise typer.Exit(code)
