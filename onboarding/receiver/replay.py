"""Replay: hand on again the inbox events that never were (Prefect was down, the receiver stopped).

The watcher calls :func:`replay_unhandled` every sweep. It reads the rows that are due, oldest
first: ``accepted`` ones older than ``min_age`` seconds (younger ones may be in the live
receiver's hands) and ``failed`` ones whose ``retry_at`` has passed. Each is rebuilt with the same
parser as the live request and handed on through the same path, independently: one event that
keeps failing never holds up the others.

Each event gets at most ``max_attempts`` attempts (``ONBOARDING_REPLAY_MAX_ATTEMPTS``), spaced
out: a first failure is retried by the next replay, later ones wait ``min_age``, doubling per
attempt, up to an hour, so a Prefect outage of a few hours costs no event. After the last
attempt the event is ``dead``, and one ``inbox_dead`` alert (per partner, with the inbox ids)
says so.

Every replay also prunes the inbox: settled rows (handled, ignored, rejected, dead) received more
than ``ONBOARDING_INBOX_RETENTION_DAYS`` ago are deleted; unhandled ones are never.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from anyio import to_thread
from sqlalchemy import Engine

from onboarding.alerts import AlertContext, AlertKind, AlertService
from onboarding.receiver.events import Handoff, InvalidEvent, parse_event
from onboarding.receiver.handling import hand_off, mark
from onboarding.settings import ConfigError, Settings, load_hub_settings, load_settings
from onboarding.store import EventOutcome, due_events, prune_inbox, session_scope, utcnow

__all__ = ["ReplayReport", "replay_unhandled"]

logger = logging.getLogger("onboarding.receiver")

_MAX_IDS_IN_ALERT = 20


@dataclass
class ReplayReport:
    """What one replay sweep did, in counts of inbox rows (``dead``: the ids that gave up)."""

    handled: int = 0
    ignored: int = 0
    failed: int = 0
    rejected: int = 0
    dead: list[int] = field(default_factory=list)
    pruned: int = 0

    @property
    def attempted(self) -> int:
        """Rows the sweep tried to hand on or settle."""
        return self.handled + self.ignored + self.failed + self.rejected + len(self.dead)

    def count(self, inbox_id: int, outcome: str) -> None:
        """Add one row that ended with ``outcome``."""
        if outcome == EventOutcome.DEAD:
            self.dead.append(inbox_id)
        elif outcome in {"handled", "ignored", "failed", "rejected"}:
            setattr(self, outcome, getattr(self, outcome) + 1)


@dataclass(frozen=True)
class _Pending:
    inbox_id: int
    body: str
    attempts: int
    error: str | None


def _due(engine: Engine, *, min_age: float, limit: int) -> list[_Pending]:
    now = utcnow()
    with session_scope(engine) as session:
        rows = due_events(
            session, accepted_before=now - timedelta(seconds=min_age), now=now, limit=limit
        )
        return [
            _Pending(row.id, row.body, row.attempts, row.error)
            for row in rows
            if row.id is not None
        ]


def _prune(engine: Engine, days: float) -> int:
    with session_scope(engine) as session:
        return prune_inbox(session, received_before=utcnow() - timedelta(days=days))


async def replay_unhandled(
    engine: Engine,
    handoff: Handoff,
    *,
    limit: int = 100,
    min_age: float = 30.0,
    max_attempts: int | None = None,
    retention_days: float | None = None,
    alerts: AlertService | None = None,
    settings: Settings | None = None,
) -> ReplayReport:
    """Hand on up to ``limit`` due inbox events, prune old settled ones; say what came of it.

    ``max_attempts`` and ``retention_days`` default to ``ONBOARDING_REPLAY_MAX_ATTEMPTS`` and
    ``ONBOARDING_INBOX_RETENTION_DAYS``; ``alerts`` to the service ``ONBOARDING_ALERT_*``
    configures. Raises :class:`~onboarding.store.DatabaseUnavailable` if the inbox cannot be read.
    """
    config = settings or load_settings()
    cap = max_attempts if max_attempts is not None else config.replay_max_attempts
    report = ReplayReport()
    pending = await to_thread.run_sync(lambda: _due(engine, min_age=min_age, limit=limit))
    for row in pending:
        outcome = await _replay_one(engine, handoff, row, retry_after=min_age, max_attempts=cap)
        report.count(row.inbox_id, outcome)
    days = retention_days if retention_days is not None else config.inbox_retention_days
    report.pruned = await to_thread.run_sync(lambda: _prune(engine, days))
    if report.pruned:
        logger.info("inbox: pruned %d settled event(s) older than %g days", report.pruned, days)
    if report.dead:
        await to_thread.run_sync(lambda: _alert_dead(engine, alerts, config, report.dead, cap))
    return report


async def _replay_one(
    engine: Engine, handoff: Handoff, row: _Pending, *, retry_after: float, max_attempts: int
) -> str:
    """Re-parse one stored body and hand it on (or settle it if it cannot be handed on)."""
    if row.attempts >= max_attempts:  # the cap was lowered since its last attempt
        outcome, note = EventOutcome.DEAD, row.error or "no attempts left"
    else:
        try:
            parsed = parse_event(row.body)
        except InvalidEvent as error:
            outcome, note = EventOutcome.REJECTED, str(error)
        else:
            if parsed.known:
                return await hand_off(
                    engine,
                    handoff,
                    parsed.with_inbox_id(row.inbox_id),
                    retry_after=retry_after,
                    max_attempts=max_attempts,
                )
            outcome, note = EventOutcome.IGNORED, "unknown event"
    await to_thread.run_sync(
        lambda: mark(engine, inbox_id=row.inbox_id, outcome=outcome, error=note)
    )
    logger.info("inbox #%d -> %s on replay: %s", row.inbox_id, outcome, note)
    return outcome


def _partner_id() -> str:
    try:
        return load_hub_settings().partner_id or "unknown"
    except ConfigError:
        return "unknown"


def _alert_dead(
    engine: Engine,
    alerts: AlertService | None,
    settings: Settings,
    dead: list[int],
    max_attempts: int,
) -> None:
    """One ``inbox_dead`` alert for the events that gave up; a failing alert is only logged."""
    shown = ", ".join(f"#{inbox_id}" for inbox_id in dead[:_MAX_IDS_IN_ALERT])
    more = f" and {len(dead) - _MAX_IDS_IN_ALERT} more" if len(dead) > _MAX_IDS_IN_ALERT else ""
    detail = (
        f"{len(dead)} inbox event(s) failed {max_attempts} handoff attempts and are dead: "
        f"{shown}{more}"
    )
    logger.error("inbox: %s", detail)
    try:
        service = alerts or AlertService.from_settings(settings, engine)
        service.raise_alert(
            kind=AlertKind.INBOX_DEAD, partner_id=_partner_id(), context=AlertContext(detail=detail)
        )
    except Exception:
        logger.exception("inbox: the inbox_dead alert could not be raised")
