"""What `up` shows besides the live log: the start banner and the closing summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from sqlalchemy import Engine

from onboarding.demo import READ_BACK
from onboarding.escaping import markup_text as escape
from onboarding.escaping import plain
from onboarding.launcher.eventlog import NameFor
from onboarding.launcher.story import delivery_step, outcome
from onboarding.redact import mask_url
from onboarding.store import RunState, count_runs_by_state, find_runs, session_scope

__all__ = ["StartInfo", "duration", "start_panel", "summary"]

SUMMARY_ROWS = 50


@dataclass(frozen=True)
class StartInfo:
    """Everything the start panel shows."""

    prefect_ui: str
    prefect_origin: str
    prefect_login: Path | None  # the file holding the auth string the UI asks for
    receiver_url: str  # the hook URL, its token masked
    receiver_url_file: Path  # the full hook URL, mode 0600
    sandbox_url: str | None
    database_url: str
    log_dir: Path
    demo_minutes: float | None


def start_panel(info: StartInfo) -> Panel:
    """The panel printed once everything answers."""
    origin = {
        "started": "started by `onboarding up`",
        "running": "already running on that port; used as is",
        "PREFECT_API_URL": "from PREFECT_API_URL",
    }.get(info.prefect_origin, info.prefect_origin)
    rows = [("Prefect UI", f"{info.prefect_ui}  [dim]({origin})[/]")]
    if info.prefect_login is not None:
        rows.append(("UI login", f"the auth string in {escape(str(info.prefect_login))}"))
    rows += [
        ("Receiver", escape(info.receiver_url)),
        ("", f"[dim]full URL with its token: {escape(str(info.receiver_url_file))}[/]"),
    ]
    if info.sandbox_url:
        rows.append(("Sandbox", f"{info.sandbox_url}/api/v2  [dim](demo scenario)[/]"))
    rows.append(("History", escape(mask_url(info.database_url))))
    if info.sandbox_url:  # the demo: its history is not ONBOARDING_DATABASE_URL's
        rows.append(("", f"[dim]read it back, now or later: {escape(READ_BACK)}[/]"))
    rows.append(("Logs", escape(str(info.log_dir))))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in rows:
        grid.add_row(label, value)
    if info.demo_minutes is not None:
        footer = f"Stops by itself after {info.demo_minutes:g} min (Ctrl-C to stop now)"
    else:
        footer = "Ctrl-C to stop"
    return Panel(Group(grid, f"\n[dim]{footer}[/]"), title="onboarding up", expand=False)


def duration(delta: timedelta | None) -> str:
    """``1 m 05 s``-style text, or an em dash for nothing."""
    if delta is None:
        return "—"
    seconds = max(0, round(delta.total_seconds()))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} m"
    return f"{minutes} m {seconds:02d} s" if minutes else f"{seconds} s"


def summary(engine: Engine, name_for: NameFor, *, demo: bool = False) -> Group:
    """Runs by state, then each run (oldest first): name, state, time to ready, outcome.

    The outcome of a finished onboarding is how it ended (never the last thing it waited for);
    of an active one, what it waits for now. ``demo`` adds how to read the demo's history back.
    """
    with session_scope(engine) as session:
        counts = count_runs_by_state(session)
        runs = list(reversed(find_runs(session, limit=SUMMARY_ROWS)))
        outcomes = [outcome(run, delivery_step(session, run)) for run in runs]
    by_state = Table()
    by_state.add_column("state")
    by_state.add_column("runs", justify="right")
    for state in RunState:
        if counts.get(state):
            by_state.add_row(str(state), str(counts[state]))
    by_state.add_row("[bold]total[/]", f"[bold]{sum(counts.values())}[/]")

    per_run = Table()
    per_run.add_column("run", no_wrap=True)
    per_run.add_column("state")
    per_run.add_column("time to ready", justify="right")
    per_run.add_column("outcome", overflow="fold")
    for run, ended in zip(runs, outcomes, strict=True):
        reached_ready = run.state in (RunState.READY, RunState.COMPLETED) and run.settled_at
        ready_in = run.settled_at - run.started_at if reached_ready and run.settled_at else None
        per_run.add_row(
            plain(name_for(run.channel_id, run.client_id)),
            plain(run.state),
            duration(ready_in),
            plain(ended),
        )
    parts: list[RenderableType] = [
        "[bold]Onboarding runs by state[/]",
        by_state,
        f"[bold]Onboarding runs[/] [dim](the {SUMMARY_ROWS} newest)[/]",
        per_run,
    ]
    if demo:
        parts.append(f"The demo's history stays; read it back with: {escape(READ_BACK)}")
    return Group(*parts)
