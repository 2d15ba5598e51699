"""`onboarding sweep`: one watcher sweep in this process, and what it found and did."""

from __future__ import annotations

from typing import Any

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the `sweep` command to ``app``."""

    @app.command()
    def sweep(
        as_json: bool = typer.Option(False, "--json", help="Print a JSON summary for scripts."),
    ) -> None:
        """Sweep the partner's channels once: record snapshots and transitions, start and wake
        onboardings (or list what it would have done when no deployment is reachable)."""
        from onboarding.cli._common import friendly_errors, print_json

        with friendly_errors():
            summary = _run_sweep()
        if as_json:
            print_json(summary.model_dump(mode="json"))
        else:
            _print_summary(summary)


def prefect_reachable(api: str) -> bool:
    """True when the Prefect API at ``api`` answers its health check."""
    import httpx

    try:
        return httpx.get(f"{api.rstrip('/')}/health", timeout=3).is_success
    except httpx.HTTPError:
        return False


def _run_sweep() -> Any:
    import asyncio
    import os

    from onboarding.cli._common import err_console
    from onboarding.launcher.auth import lock_temporary_server
    from onboarding.settings import load_hub_settings, load_settings
    from onboarding.store import upgrade

    settings = load_settings()
    load_hub_settings().require_credentials()
    upgrade(settings.database_url)
    api = os.environ.get("PREFECT_API_URL")
    if api and not prefect_reachable(api):
        # Decided before Prefect is imported: its settings are read once, at import.
        err_console.print(
            f"[yellow]Prefect API {api} does not answer; sweeping with a temporary local "
            "one (no onboarding can be started or woken).[/]"
        )
        os.environ.pop("PREFECT_API_URL")
    lock_temporary_server(os.environ)

    from flows.watch import watch_channels
    from onboarding.cli._common import quiet_prefect_console

    quiet_prefect_console()
    with err_console.status("Sweeping the partner's channels …"):
        state = asyncio.run(watch_channels(return_state=True))
    return state.result()


def _print_summary(summary: Any) -> None:
    from rich.table import Table

    from onboarding.cli._common import console
    from onboarding.escaping import markup_text, plain

    table = Table(title="Sweep")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("channels", overflow="fold")
    for status, count in sorted(summary.seen.items()):
        table.add_row(plain(f"seen {status}"), str(count), "")
    table.add_row("transitions recorded", str(summary.transitions), "")
    for label, ids in (
        ("onboardings started", summary.started),
        ("onboardings woken", summary.woken),
        ("adopted (ready before this installation)", summary.adopted),
        ("cancelled", summary.cancelled),
        ("flow runs re-created", summary.reopened),
        ("would start", summary.would_start),
        ("would wake", summary.would_wake),
        ("past deadline", summary.overdue),
        ("not found", summary.missing),
    ):
        if ids:
            shown = ", ".join(ids[:20]) + (" …" if len(ids) > 20 else "")
            table.add_row(label, str(len(ids)), plain(shown))
    table.add_row("inbox events replayed", str(summary.replayed), "")
    console.print(table)
    if summary.prefect_note:
        console.print(
            f"[yellow]No onboarding was started or woken:[/] {markup_text(summary.prefect_note)}",
            highlight=False,
        )
