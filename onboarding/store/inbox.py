"""The inbox: every partner webhook received, stored before anything else happens to it.

Storing is idempotent by ``dedup_key`` (the same delivery twice is one row). Malformed events are
stored too, with outcome ``rejected`` and the error, so nothing accepted or refused is lost.
Secret-bearing headers are dropped before the row is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from onboarding.store.models import EventOutcome, InboundEvent
from onboarding.store.types import utcnow

__all__ = [
    "body_dedup_key",
    "mark_event",
    "safe_headers",
    "store_inbound_event",
    "unhandled_events",
]

_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "d360-api-key"}
)
_SECRET_WORDS = ("token", "secret", "password", "api-key", "apikey", "api_key", "auth")
_SETTLED = frozenset({EventOutcome.HANDLED, EventOutcome.IGNORED, EventOutcome.FAILED})


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` (names lower-cased) without the ones that can carry credentials."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in _SECRET_HEADERS or any(word in lower for word in _SECRET_WORDS):
            continue
        kept[lower] = value
    return kept


def body_dedup_key(body: str | bytes) -> str:
    """A dedup key for an event without a usable id of its own: the body's SHA-256."""
    raw = body.encode() if isinstance(body, str) else body
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _by_key(session: Session, dedup_key: str) -> InboundEvent | None:
    return session.exec(select(InboundEvent).where(InboundEvent.dedup_key == dedup_key)).first()


def store_inbound_event(
    session: Session,
    *,
    dedup_key: str,
    body: str | bytes,
    headers: Mapping[str, str],
    event_type: str | None = None,
    channel_id: str | None = None,
    client_id: str | None = None,
    outcome: str = EventOutcome.ACCEPTED,
    error: str | None = None,
    received_at: datetime | None = None,
) -> tuple[InboundEvent, bool]:
    """Store the event unless its ``dedup_key`` is known; return ``(event, stored_now)``.

    Bytes that are not UTF-8 are kept with backslash escapes rather than dropped.
    """
    existing = _by_key(session, dedup_key)
    if existing is not None:
        return existing, False
    text = body if isinstance(body, str) else body.decode("utf-8", errors="backslashreplace")
    event = InboundEvent(
        dedup_key=dedup_key,
        event_type=event_type,
        channel_id=channel_id,
        client_id=client_id,
        body=text,
        headers=safe_headers(headers),
        received_at=received_at or utcnow(),
        outcome=outcome,
        error=error,
    )
    try:
        with session.begin_nested():
            session.add(event)
    except IntegrityError:
        winner = _by_key(session, dedup_key)
        if winner is None:
            raise
        return winner, False
    return event, True


def mark_event(
    session: Session, *, event_id: int, outcome: str, error: str | None = None
) -> InboundEvent:
    """Record what handling the event came to (``handled``/``ignored``/``failed`` stamp a time)."""
    event = session.get(InboundEvent, event_id)
    if event is None:
        raise LookupError(f"no inbound event with id {event_id}")
    event.outcome = outcome
    event.error = error
    event.attempts += 1
    if outcome in _SETTLED:
        event.handled_at = utcnow()
    session.add(event)
    session.flush()
    return event


def unhandled_events(
    session: Session, *, limit: int = 100, include_failed: bool = False
) -> list[InboundEvent]:
    """Accepted events not handled yet (optionally failed ones too), oldest first."""
    outcomes: list[Any] = [EventOutcome.ACCEPTED]
    if include_failed:
        outcomes.append(EventOutcome.FAILED)
    statement = (
        select(InboundEvent)
        .where(col(InboundEvent.outcome).in_(outcomes))
        .order_by(col(InboundEvent.received_at), col(InboundEvent.id))
        .limit(limit)
    )
    return list(session.exec(statement))
