"""`onboarding status` and `onboarding history`: the onboarding history, from the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from onboarding.store import OnboardingRun

__all__ = ["DEMO_OPTION", "WIDE_OPTION", "register", "run_as_json"]

DEMO_OPTION = typer.Option(
    False,
    "--demo",
    help="Read the history of `onboarding up --demo` (ONBOARDING_HOME/demo/history.db) instead "
    "of ONBOARDING_DATABASE_URL.",
)
WIDE_OPTION = typer.Option(
    False, "--wide", help="Show every column, however wide (narrow terminals drop some)."
)

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
        demo: bool = DEMO_OPTION,
        wide: bool = WIDE_OPTION,
    ) -> None:
        """Onboarding runs recorded in the history, newest first."""
        from onboarding.cli._common import print_json
        from onboarding.store import find_runs

        with _session(demo=demo, command="status") as session:
            runs = find_runs(session, state=state, limit=limit)
        if as_json:
            print_json([run_as_json(run) for run in runs])
        else:
            _runs_table(runs, wide=wide)

    @app.command()
    def history(
        channel_id: str = typer.Argument(..., help="The channel whose history to show."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
        demo: bool = DEMO_OPTION,
        wide: bool = WIDE_OPTION,
    ) -> None:
        """One channel's runs and every status transition observed."""
        from onboarding.cli._common import print_json
        from onboarding.store import channel_timeline, find_runs

        with _session(demo=demo, command="history") as session:
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
        _runs_table(runs, title=f"Runs of channel {channel_id}", wide=wide)
        _timeline_table(timeline, wide=wide)


def _session(*, demo: bool = False, command: str = "status") -> Any:
    """A session on the history database (the demo's with ``demo``), errors turned into one line.

    The database must exist and be migrated: a read never creates one (see
    :mod:`onboarding.store.readiness`).
    """
    from onboarding.cli._history_db import history_session

    return history_session(demo=demo, command=command)


def _age(since: datetime | None) -> str:
    from onboarding.timeline import format_duration

    return format_duration(datetime.now(UTC) - since) if since else "—"


def _runs_table(runs: list[OnboardingRun], *, title: str | None = None, wide: bool = False) -> None:
    from onboarding.cli._common import console
    from onboarding.cli._fit import KEEP, Column, print_fitted
    from onboarding.text import mask_phone

    # The state and the channel are never dropped; the rest go, least useful first.
    columns = [
        Column("run", 1),
        Column("channel", KEEP),
        Column("client", 3, wrap=True),
        Column("phone", 0),
        Column("state", KEEP),
        Column("availability", 4),
        Column("in state", 2),
        Column("reason", 5, wrap=True, min_width=16),
    ]
    rows = [
        [
            str(run.id),
            run.channel_id,
            run.client_name or run.client_id,
            mask_phone(run.phone_number),
            run.state,
            run.availability_status or "—",
            _age(run.finished_at or run.settled_at or run.started_at),
            run.failure_reason or "",
        ]
        for run in runs
    ]
    title = title or f"{len(runs)} onboarding run(s)"
    print_fitted(console, columns, rows, title=title, wide=wide)


def _timeline_table(timeline: list[Any], *, wide: bool = False) -> None:
    from onboarding.cli._common import console
    from onboarding.cli._fit import KEEP, Column, print_fitted
    from onboarding.timeline import format_duration

    columns = [
        Column("observed (UTC)", KEEP),
        Column("availability", KEEP),
        Column("status", 2, wrap=True),
        Column("source", 1),
        Column("lasted", 3),
    ]
    rows = []
    for index, obs in enumerate(timeline):
        until = timeline[index + 1].observed_at if index + 1 < len(timeline) else datetime.now(UTC)
        rows.append(
            [
                f"{obs.observed_at:%Y-%m-%d %H:%M:%S}",
                obs.availability_status or "—",
                obs.status or "—",
                obs.source,
                format_duration(until - obs.observed_at),
            ]
        )
    print_fitted(console, columns, rows, title="Status transitions", wide=wide)
