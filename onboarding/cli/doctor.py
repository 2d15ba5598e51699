"""`onboarding doctor`: check the installation and say what is wrong and how to fix it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the `doctor` command to ``app``."""

    @app.command()
    def doctor(
        no_send: bool = typer.Option(
            False, "--no-send", help="Do not send a test notice to the alert sinks."
        ),
        as_json: bool = typer.Option(
            False,
            "--json",
            help="Print {ok, checks: [{name, status (ok|warn|fail), summary, fix, details}]}.",
        ),
        page_size: int = typer.Option(
            5, "--page-size", min=1, help="Channels asked for in the one Partner API request."
        ),
        record: Path | None = typer.Option(
            None,
            "--record",
            file_okay=False,
            help="Save each Partner API answer to this directory, redacted (ids kept; secrets "
            "and phone numbers masked), to send to us when your account answers differently.",
        ),
    ) -> None:
        """Check settings, history DB, Partner API, Prefect and alert sinks; exit 1 if broken."""
        from onboarding.cli._common import EXIT_FAILED, console, print_json
        from onboarding.doctor import healthy, print_checks, run_doctor

        secrets = _secrets()
        checks = [
            _masked(check, secrets)
            for check in run_doctor(send=not no_send, page_size=page_size, record_dir=record)
        ]
        ok = healthy(checks)
        if as_json:
            print_json({"ok": ok, "checks": [check.model_dump(mode="json") for check in checks]})
        else:
            print_checks(checks, console)
        if not ok:
            raise typer.Exit(EXIT_FAILED)


def _secrets() -> list[str]:
    """The secrets the settings hold (none when they cannot be read: nothing then quotes them)."""
    from onboarding.redact import secret_values
    from onboarding.settings import ConfigError, load_hub_settings, load_settings

    try:
        return secret_values(load_settings(), load_hub_settings())
    except ConfigError:
        return []


def _masked(check: Any, secrets: list[str]) -> Any:
    """``check`` with every known secret masked in its text (the checks mask by shape already;
    this catches a secret quoted back by a server's error message)."""
    from onboarding.redact import scrub

    return check.model_copy(
        update={
            "summary": scrub(check.summary, secrets),
            "fix": scrub(check.fix, secrets) if check.fix else check.fix,
            "details": [scrub(line, secrets) for line in check.details],
        }
    )
