"""Replay: hand on again the inbox events that never were (Prefect was down, the receiver stopped).

The watcher calls :func:`replay_unhandled` every sweep. It reads rows still ``accepted`` or
``failed``, oldest first, rebuilds each :class:`~onboarding.receiver.events.HandoffEvent` from the
stored body with the same parser as the live request, and hands it on through the same path.

``accepted`` rows younger than ``min_age`` seconds are skipped: the live receiver may be handing
them on right now. After ``max_consecutive_failures`` failures in a row the sweep stops (Prefect is
most likely unreachable; the next sweep tries again) instead of failing every remaining row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from anyio import to_thread
from sqlalchemy import Engine

from onboarding.receiver.events import Handoff, InvalidEvent, parse_event
from onboarding.receiver.handling import hand_off, mark
from onboarding.store import EventOutcome, session_scope, unhandled_events, utcnow

__all__ = ["ReplayReport", "replay_unhandled"]

logger = logging.getLogger("onboarding.receiver")


@dataclass
class ReplayReport:
    """What one replay sweep did, in counts of inbox rows."""

    handled: int = 0
    ignored: int = 0
    failed: int = 0
    rejected: int = 0
    skipped: int = 0
    stopped_early: bool = False

    @property
    def attempted(self) -> int:
        """Rows the sweep tried to hand on or settle."""
        return self.handled + self.ignored + self.failed + self.rejected

    def count(self, outcome: str) -> None:
        """Add one row that ended with ``outcome``."""
        setattr(self, outcome, getattr(self, outcome) + 1)


@dataclass(frozen=True)
class _Pending:
    inbox_id: int
    body: str
    outcome: str
    received_at: datetime


def _pending(engine: Engine, limit: int) -> list[_Pending]:
    with session_scope(engine) as session:
        rows = unhandled_events(session, limit=limit, include_failed=True)
        return [
            _Pending(row.id, row.body, row.outcome, row.received_at)
            for row in rows
            if row.id is not None
        ]


async def replay_unhandled(
    engine: Engine,
    handoff: Handoff,
    *,
    limit: int = 100,
    min_age: float = 30.0,
    max_consecutive_failures: int = 3,
) -> ReplayReport:
    """Hand on up to ``limit`` inbox events still ``accepted`` or ``failed``; say what came of it.

    Raises :class:`~onboarding.store.DatabaseUnavailable` if the inbox cannot be read.
    """
    report = ReplayReport()
    pending = await to_thread.run_sync(lambda: _pending(engine, limit))
    cutoff = utcnow() - timedelta(seconds=min_age)
    failures_in_a_row = 0
    for row in pending:
        if row.outcome == EventOutcome.ACCEPTED and row.received_at > cutoff:
            report.skipped += 1
            continue
        outcome = await _replay_one(engine, handoff, row)
        report.count(outcome)
        failures_in_a_row = failures_in_a_row + 1 if outcome == EventOutcome.FAILED else 0
        if failures_in_a_row >= max_consecutive_failures:
            report.stopped_early = True
            logger.warning("replay stopped after %d failures in a row", failures_in_a_row)
            break
    return report


async def _replay_one(engine: Engine, handoff: Handoff, row: _Pending) -> str:
    """Re-parse one stored body and hand it on (or settle it if it cannot be handed on)."""
    try:
        parsed = parse_event(row.body)
    except InvalidEvent as error:
        outcome, note = EventOutcome.REJECTED, str(error)
    else:
        if parsed.known:
            return await hand_off(engine, handoff, parsed.with_inbox_id(row.inbox_id))
        outcome, note = EventOutcome.IGNORED, "unknown event"
    await to_thread.run_sync(
        lambda: mark(engine, inbox_id=row.inbox_id, outcome=outcome, error=note)
    )
    logger.info("inbox #%d -> %s on replay: %s", row.inbox_id, outcome, note)
    return outcome
