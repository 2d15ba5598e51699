"""`onboarding status` and `onboarding history`: the onboarding history, from the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from onboarding.store import OnboardingRun

__all__ = ["register", "run_as_json"]

RUN_FIELDS = (
    "id",
    "channel_id",
    "client_id",
    "client_name",
    "state",
    "availability_status",
    "channel_status",
    "trigger",
    "stage",
    "started_at",
    "settled_at",
    "finished_at",
    "deadline_at",
    "failure_reason",
    "attempts",
    "flow_run_id",
)


def run_as_json(run: OnboardingRun) -> dict[str, Any]:
    """A run as a JSON-ready dict (phone number masked; timestamps ISO-8601 UTC)."""
    from onboarding.text import mask_phone

    data: dict[str, Any] = {}
    for name in RUN_FIELDS:
        value = getattr(run, name)
        data[name] = value.isoformat() if isinstance(value, datetime) else value
    data["phone_number"] = mask_phone(run.phone_number) or None
    return data


def register(app: typer.Typer) -> None:
    """Add the `status` and `history` commands to ``app``."""

    @app.command()
    def status(
        state: str | None = typer.Option(
            None, "--state", help="Only runs in this state (pending, waiting, completed, ...)."
        ),
        limit: int = typer.Option(100, "--limit", help="At most this many runs, newest first."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON array for scripts."),
    ) -> None:
        """Onboarding runs recorded in the history, newest first."""
        from onboarding.cli._common import print_json
        from onboarding.store import find_runs

        with _session() as session:
            runs = find_runs(session, state=state, limit=limit)
        if as_json:
            print_json([run_as_json(run) for run in runs])
        else:
            _runs_table(runs)

    @app.command()
    def history(
        channel_id: str = typer.Argument(..., help="The channel whose history to show."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    ) -> None:
        """One channel's runs and every status transition observed."""
        from onboarding.cli._common import print_json
        from onboarding.store import channel_timeline, find_runs

        with _session() as session:
            runs = find_runs(session, channel_id=channel_id)
            timeline = channel_timeline(session, channel_id=channel_id)
        if as_json:
            print_json(
                {
                    "channel_id": channel_id,
                    "runs": [run_as_json(run) for run in runs],
                    "transitions": [
                        {
                            "observed_at": obs.observed_at.isoformat(),
                            "last_seen_at": obs.last_seen_at.isoformat(),
                            "availability_status": obs.availability_status,
                            "status": obs.status,
                            "source": obs.source,
                            "run_id": obs.run_id,
                        }
                        for obs in timeline
                    ],
                }
            )
            return
        _runs_table(runs, title=f"Runs of channel {channel_id}")
        _timeline_table(timeline)


def _session() -> Any:
    """A session on the configured history database, errors turned into one line."""
    import contextlib

    from onboarding.cli._common import EXIT_CONFIG, fail
    from onboarding.settings import ConfigError, load_settings
    from onboarding.store import StoreError, make_engine, session_scope

    @contextlib.contextmanager
    def scope() -> Any:
        try:
            engine = make_engine(load_settings().database_url)
            with session_scope(engine) as session:
                yield session
        except (ConfigError, StoreError) as exc:
            fail(str(exc), EXIT_CONFIG)

    return scope()


def _age(since: datetime | None) -> str:
    from onboarding.timeline import format_duration

    return format_duration(datetime.now(UTC) - since) if since else "—"


def _runs_table(runs: list[OnboardingRun], *, title: str | None = None) -> None:
    from rich.table import Table

    from onboarding.cli._common import console
    from onboarding.text import mask_phone

    table = Table(title=title or f"{len(runs)} onboarding run(s)")
    for column in ("run", "channel", "client", "phone", "state", "availability", "in state"):
        table.add_column(column)
    table.add_column("reason", overflow="fold")
    for run in runs:
        table.add_row(
            str(run.id),
            run.channel_id,
            run.client_name or run.client_id,
            mask_phone(run.phone_number),
            run.state,
            run.availability_status or "—",
            _age(run.finished_at or run.settled_at or run.started_at),
            run.failure_reason or "",
        )
    console.print(table)


def _timeline_table(timeline: list[Any]) -> None:
    from rich.table import Table

    from onboarding.cli._common import console
    from onboarding.timeline import format_duration

    table = Table(title="Status transitions")
    for column in ("observed (UTC)", "availability", "status", "source", "lasted"):
        table.add_column(column)
    for index, obs in enumerate(timeline):
        until = timeline[index + 1].observed_at if index + 1 < len(timeline) else datetime.now(UTC)
        table.add_row(
            f"{obs.observed_at:%Y-%m-%d %H:%M:%S}",
            obs.availability_status or "—",
            obs.status or "—",
            obs.source,
            format_duration(until - obs.observed_at),
        )
    console.print(table)
