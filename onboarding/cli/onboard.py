"""`onboarding onboard CHANNEL_ID`: run one onboarding in this process and say how it ended."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the `onboard` command to ``app``."""

    @app.command()
    def onboard(
        channel_id: str = typer.Argument(..., help="The channel to onboard."),
        client: str | None = typer.Option(
            None, "--client", help="Its client id (read from the channel when omitted)."
        ),
    ) -> None:
        """Onboard one channel now, polling in-process until it is ready, in error or late.

        Exit code: 0 completed, 1 failed (error or unknown status), 2 deadline exceeded,
        3 configuration or authentication error, 4 Partner API unavailable.
        """
        from onboarding.cli._common import friendly_errors

        with friendly_errors():
            code, line = _run(channel_id, client)
        _say(code, line)
        raise typer.Exit(code)


def _run(channel_id: str, client_id: str | None) -> tuple[int, str]:
    """Run the flow and turn its end state and history into an exit code and one line."""
    import asyncio
    import os

    from onboarding.launcher.auth import lock_temporary_server

    _require_prefect(os.environ.get("PREFECT_API_URL"))
    lock_temporary_server(os.environ)  # before Prefect is imported (see there)

    from flows.onboard import onboard_in_process
    from onboarding.cli._common import EXIT_DEADLINE, EXIT_FAILED, quiet_prefect_console
    from onboarding.runtime import engine_for
    from onboarding.settings import load_hub_settings, load_settings
    from onboarding.store import RunState, find_runs, session_scope, upgrade

    settings = load_settings()
    load_hub_settings().require_credentials()
    upgrade(settings.database_url)
    quiet_prefect_console()
    state = asyncio.run(onboard_in_process(channel_id, client_id))
    if state.is_failed() or state.is_crashed():
        error = state.result(raise_on_failure=False)
        if isinstance(error, BaseException) and not isinstance(error, _HandledFailure):
            raise error  # friendly_errors turns auth/config/API errors into exit codes
    with session_scope(engine_for(settings.database_url)) as session:
        runs = find_runs(session, channel_id=channel_id, limit=1)
    run = runs[0] if runs else None
    if state.is_completed():
        return 0, state.message or f"channel {channel_id} onboarded"
    reason = state.message or (run.failure_reason if run else None) or "failed"
    if run is not None and run.state == RunState.TIMED_OUT:
        return EXIT_DEADLINE, f"channel {channel_id}: {reason}"
    return EXIT_FAILED, f"channel {channel_id}: {reason}"


def _require_prefect(api: str | None) -> None:
    """Stop with one line (exit 3) when ``PREFECT_API_URL`` names a server that does not answer."""
    from onboarding.cli._common import EXIT_CONFIG, fail
    from onboarding.cli.sweep_once import prefect_reachable
    from onboarding.redact import mask_url

    if api and not prefect_reachable(api):
        fail(
            f"Prefect API {mask_url(api)} does not answer (GET /health): start it "
            "(`onboarding up`) or unset PREFECT_API_URL to onboard with a temporary local one",
            EXIT_CONFIG,
        )


class _HandledFailure(Exception):
    """Never raised: stands for failures the flow handled and recorded itself."""


def _say(code: int, line: str) -> None:
    from onboarding.cli._common import console, err_console
    from onboarding.escaping import markup_text

    if code == 0:
        console.print(f"[green]✓[/] {markup_text(line)}", highlight=False)
    else:
        err_console.print(f"[red]✗[/] {markup_text(line)}", highlight=False)
