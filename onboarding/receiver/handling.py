"""Inbox writes for the receiver and the one hand-off path shared by live requests and replays.

The store is synchronous SQLAlchemy; these helpers are plain functions the async callers run in a
worker thread, each one short transaction. :func:`hand_off` calls the injected handoff, then
records what came of it; a failure is recorded (``failed``, one line, secrets scrubbed) so the
replay finds it, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from sqlalchemy import Engine

from onboarding.receiver.events import Handoff, HandoffEvent
from onboarding.store import EventOutcome, mark_event, session_scope, store_inbound_event

__all__ = ["Stored", "describe", "hand_off", "mark", "one_line", "store"]

logger = logging.getLogger("onboarding.receiver")

_OUTCOMES = frozenset({EventOutcome.HANDLED, EventOutcome.IGNORED})
_MAX_ERROR = 500


@dataclass(frozen=True)
class Stored:
    """The inbox row a delivery landed in."""

    inbox_id: int
    outcome: str
    stored_now: bool


def store(engine: Engine, *, dedup_key: str, **fields: Any) -> Stored:
    """Store one delivery (idempotent by ``dedup_key``) in its own transaction.

    ``fields`` are :func:`~onboarding.store.store_inbound_event`'s keywords (body, headers, ...).
    """
    with session_scope(engine) as session:
        event, stored_now = store_inbound_event(session, dedup_key=dedup_key, **fields)
        session.flush()
        if event.id is None:  # pragma: no cover - a flushed row always has its id
            raise RuntimeError("the inbox row got no id")
        return Stored(inbox_id=event.id, outcome=event.outcome, stored_now=stored_now)


def mark(engine: Engine, *, inbox_id: int, **fields: Any) -> str:
    """Record what handling ``inbox_id`` came to, in its own transaction; return the outcome.

    ``fields`` are :func:`~onboarding.store.mark_event`'s keywords (outcome, error, ...); a
    failure on the last of ``max_attempts`` attempts is recorded ``dead``.
    """
    with session_scope(engine) as session:
        event = mark_event(session, event_id=inbox_id, **fields)
        return event.outcome


def one_line(error: BaseException, scrub: Iterable[str] = ()) -> str:
    """``error`` as one short line, with every string in ``scrub`` masked."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    for secret in scrub:
        if secret:
            text = text.replace(secret, "***")
    return text[:_MAX_ERROR]


def describe(inbox_id: int, event_type: str | None, channel_id: str | None) -> str:
    """The log prefix of one event: ``inbox #12 channel_created channel=abc``."""
    parts = [f"inbox #{inbox_id}", event_type or "<no event>"]
    if channel_id:
        parts.append(f"channel={channel_id}")
    return " ".join(parts)


async def hand_off(
    engine: Engine,
    handoff: Handoff,
    event: HandoffEvent,
    *,
    scrub: Iterable[str] = (),
    retry_after: float = 0.0,
    max_attempts: int | None = None,
) -> str:
    """Hand ``event`` on, mark its inbox row with the result and return the outcome recorded.

    A failure is recorded ``failed`` (due again after :func:`~onboarding.store.inbox.retry_delay`
    of ``retry_after``), or ``dead`` on the last of ``max_attempts``. Cancellation (receiver
    shutdown) propagates and leaves the row as it was, for the replay.
    """
    label = describe(event.inbox_id, event.event_type, event.channel_id)
    error: str | None = None
    outcome: str
    try:
        result = await handoff(event)
    except Exception as exc:
        outcome, error = EventOutcome.FAILED, one_line(exc, scrub)
    else:
        if result in _OUTCOMES:
            outcome = EventOutcome(result)
        else:
            outcome, error = EventOutcome.FAILED, f"handoff returned {result!r}"
    attempted = outcome
    try:
        outcome = await to_thread.run_sync(
            lambda: mark(
                engine,
                inbox_id=event.inbox_id,
                outcome=attempted,
                error=error,
                retry_after=retry_after,
                max_attempts=max_attempts,
            )
        )
    except Exception as exc:
        # The row keeps its old outcome, so the replay hands the event on again later.
        logger.warning("%s -> %s, but not recorded: %s", label, outcome, one_line(exc, scrub))
        return outcome
    if error is None:
        logger.info("%s -> %s", label, outcome)
    else:
        logger.warning("%s -> %s: %s", label, outcome, error)
    return outcome
