"""Run every doctor check in order and print the outcome (✓ ok, ! warning, ✗ failure)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console

from onboarding.doctor.checks import (
    check_alert_sinks,
    check_database,
    check_event_names,
    check_prefect,
    check_settings,
    prefect_api_url,
)
from onboarding.doctor.partner import check_partner_api
from onboarding.doctor.result import Check, Status
from onboarding.doctor.webhook import check_partner_webhook
from onboarding.escaping import markup_text as escape

__all__ = ["healthy", "print_checks", "run_doctor"]

_STYLE = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "red"}


def run_doctor(
    *, send: bool = True, page_size: int = 5, record_dir: Path | None = None
) -> list[Check]:
    """Every check, in order; later checks that need the settings are skipped if they are bad.

    ``record_dir``: save each Partner API answer there, redacted (``doctor --record``).
    """
    settings_check, settings, hub = check_settings()
    checks = [settings_check]
    if settings is None or hub is None:
        return checks
    database = check_database(settings)
    checks.append(database)
    if database.status is Status.OK:
        checks.append(check_event_names(settings))
    partner = asyncio.run(check_partner_api(hub, limit=page_size, record_dir=record_dir))
    checks.extend(partner)
    if partner[0].status is Status.OK:
        checks.append(asyncio.run(check_partner_webhook(hub, settings)))
    checks.append(check_prefect(prefect_api_url()))
    checks.extend(check_alert_sinks(settings, send=send))
    return checks


def healthy(checks: list[Check]) -> bool:
    """True when no check failed (warnings are fine)."""
    return all(check.status is not Status.FAIL for check in checks)


def print_checks(checks: list[Check], console: Console) -> None:
    """One line per check, then its fix hint and details, indented."""
    for check in checks:
        style = _STYLE[check.status]
        console.print(
            f"[{style}]{check.status.mark}[/] [bold]{escape(check.name)}[/]: "
            f"{escape(check.summary)}",
            highlight=False,
            soft_wrap=True,
        )
        for line in check.details:
            console.print(f"    {escape(line)}", style="dim", highlight=False, soft_wrap=True)
        if check.fix and check.status is not Status.OK:
            console.print(f"  → {escape(check.fix)}", highlight=False, soft_wrap=True)
    failed = sum(check.status is Status.FAIL for check in checks)
    warned = sum(check.status is Status.WARN for check in checks)
    verdict = "[green]all good[/]" if not failed else f"[red]{failed} problem(s)[/]"
    console.print(f"{verdict}, {warned} warning(s)", highlight=False)
