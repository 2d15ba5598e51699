"""The live log: one line per onboarding event, read from the history database.

Every second it reads only what is new: status observations with an id above the last one seen,
and runs updated in the last few seconds (a short look-back, because a row's ``updated_at`` is
stamped before its transaction commits); a run's line is printed once per state it reaches, and
once per retry while it waits for the client's permission or a delivery (each has its own
``retry_at``). The words come from :mod:`onboarding.launcher.story`: "completed" only once the
history run is completed, never for a flow run that handed its wait over to another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rich.console import Console
from rich.text import Text
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from onboarding.escaping import plain
from onboarding.launcher.story import delivery_step, event_text
from onboarding.store import OnboardingRun, RunState, StatusObservation, session_scope, utcnow

__all__ = ["EventLine", "EventLog", "NameFor"]

NameFor = Callable[[str, str | None], str]
LOOK_BACK = timedelta(seconds=5)
# Queued or parked: both mean "not settled yet"; moving between them is not news.
_NOT_YET = frozenset({RunState.PENDING, RunState.WAITING})
_STYLES: dict[str, str] = {
    RunState.COMPLETED: "green",
    RunState.READY: "cyan",  # good news, but the onboarding is not done yet
    RunState.FAILED: "red",
    RunState.TIMED_OUT: "red",
    RunState.CANCELLED: "yellow",
    RunState.PERMISSION: "yellow",
    RunState.UNDELIVERED: "yellow",
}


@dataclass(frozen=True)
class EventLine:
    """One line of the live log."""

    at: datetime
    name: str
    text: str
    style: str = ""

    def render(self) -> Text:
        """The line as rich text: local time, run name, what happened, one line.

        Names, statuses and reasons are shown literally: no markup, control characters escaped.
        """
        when = self.at.astimezone().strftime("%H:%M:%S")
        return Text.assemble(
            (when, "dim"), "  ", plain(self.name, "bold"), "  ", plain(self.text, self.style)
        )


_RETRYING = frozenset({RunState.PERMISSION, RunState.UNDELIVERED})
_NEEDS_STEP = frozenset({RunState.UNDELIVERED, RunState.COMPLETED})


def _status_label(observation: StatusObservation) -> str:
    return observation.availability_status or observation.status or "unknown"


def _mark(run: OnboardingRun) -> str:
    """What makes a run's moment news: its state, and each new retry time while it retries."""
    if run.state in _RETRYING and run.retry_at is not None:
        return f"{run.state}@{run.retry_at.isoformat()}"
    return str(run.state)


class EventLog:
    """Reads new history rows and turns them into :class:`EventLine` objects."""

    def __init__(self, engine: Engine, name_for: NameFor) -> None:
        self._engine = engine
        self._name_for = name_for
        self._run_states: dict[int, str] = {}  # run id -> its last mark (see _mark)
        self._clients: dict[str, str] = {}  # channel id -> client id, from the runs seen
        self._statuses: dict[str, str] = {}  # channel id -> last status printed
        with session_scope(engine) as session:
            last = session.exec(select(func.max(StatusObservation.id))).one()
            # Runs already settled before `up` started are history, not news.
            for run in session.exec(select(OnboardingRun)):
                if run.id is not None:
                    self._run_states[run.id] = _mark(run)
        self._last_observation = last or 0
        self._since = utcnow() - LOOK_BACK

    def poll(self) -> list[EventLine]:
        """The events recorded since the last call, oldest first."""
        with session_scope(self._engine) as session:
            runs = session.exec(
                select(OnboardingRun)
                .where(col(OnboardingRun.updated_at) >= self._since - LOOK_BACK)
                .order_by(col(OnboardingRun.updated_at))
            ).all()
            observations = session.exec(
                select(StatusObservation)
                .where(col(StatusObservation.id) > self._last_observation)
                .order_by(col(StatusObservation.id))
            ).all()
            previous = {
                obs.channel_id: self._previous_status(session, obs)
                for obs in observations
                if obs.channel_id not in self._statuses
            }
            lines = [line for run in runs if (line := self._run_line(session, run)) is not None]
        for obs in observations:
            self._last_observation = max(self._last_observation, obs.id or 0)
            line = self._observation_line(obs, previous.get(obs.channel_id))
            if line is not None:
                lines.append(line)
        return sorted(lines, key=lambda line: line.at)

    def _previous_status(self, session: Session, obs: StatusObservation) -> str | None:
        row = session.exec(
            select(StatusObservation)
            .where(StatusObservation.channel_id == obs.channel_id)
            .where(col(StatusObservation.id) < (obs.id or 0))
            .order_by(col(StatusObservation.id).desc())
            .limit(1)
        ).first()
        return _status_label(row) if row is not None else None

    def _run_line(self, session: Session, run: OnboardingRun) -> EventLine | None:
        assert run.id is not None
        self._clients[run.channel_id] = run.client_id
        self._since = max(self._since, run.updated_at)
        before = self._run_states.get(run.id)
        mark = self._run_states[run.id] = _mark(run)
        before_state = before.split("@", 1)[0] if before else None
        if before == mark or (before_state in _NOT_YET and run.state in _NOT_YET):
            return None
        step = delivery_step(session, run) if run.state in _NEEDS_STEP else None
        return EventLine(
            at=run.updated_at,
            name=self._name_for(run.channel_id, run.client_id),
            text=event_text(run, step, first_sight=before is None),
            style=_STYLES.get(run.state, ""),
        )

    def _observation_line(self, obs: StatusObservation, previous: str | None) -> EventLine | None:
        now = _status_label(obs)
        before = self._statuses.get(obs.channel_id, previous)
        self._statuses[obs.channel_id] = now
        if before == now:
            return None
        client = self._clients.get(obs.channel_id)
        name = self._name_for(obs.channel_id, client) if client else f"channel {obs.channel_id}"
        text = f"{before} → {now}" if before else f"seen {now}"
        style = {"ready": "green", "error": "red"}.get(now, "cyan")
        return EventLine(at=obs.observed_at, name=name, text=text, style=style)

    async def follow(self, console: Console, interval: float = 1.0) -> None:
        """Print new events every ``interval`` seconds until cancelled."""
        while True:
            for line in await asyncio.to_thread(self.poll):
                console.print(line.render(), highlight=False, soft_wrap=True)
            await asyncio.sleep(interval)
