"""The inbox: every partner webhook received, stored before anything else happens to it.

Storing is idempotent by ``dedup_key`` (the same delivery twice is one row). Malformed events are
stored too, with outcome ``rejected`` and the error, so nothing accepted or refused is lost.
Secret-bearing headers are dropped before the row is written.

Nothing a sender puts in a delivery can make the write fail: every string bound for a column is
cut to the column's size, NUL bytes (PostgreSQL text cannot hold them) and lone surrogates
(no encoding can) are taken out, and a body that is not text is kept with backslash escapes.

An event's life::

    accepted ──handoff──> handled | ignored
        │
        └──fails──> failed ──retry_at passes, replay──> handled | ignored | failed ...
                       └──max attempts──> dead

Settled rows (everything but ``accepted`` and ``failed``) are pruned after the retention period
by :func:`prune_inbox`; unhandled ones never are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, and_, col, or_, select

from onboarding.store.models import EventOutcome, InboundEvent
from onboarding.store.types import utcnow

__all__ = [
    "MAX_RETRY_DELAY",
    "UNHANDLED",
    "body_dedup_key",
    "clean_text",
    "due_events",
    "mark_event",
    "prune_inbox",
    "retry_delay",
    "safe_headers",
    "store_inbound_event",
]

_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "d360-api-key"}
)
_SECRET_WORDS = ("token", "secret", "password", "api-key", "apikey", "api_key", "auth")
_STAMPED = frozenset(
    {EventOutcome.HANDLED, EventOutcome.IGNORED, EventOutcome.FAILED, EventOutcome.DEAD}
)
UNHANDLED: tuple[str, ...] = (EventOutcome.ACCEPTED, EventOutcome.FAILED)
"""Outcomes of events still to be handed on: never pruned."""

_MAX_HEADER = 1024


def _limit(column: str) -> int:
    length = getattr(InboundEvent.__table__.c[column].type, "length", None)  # type: ignore[attr-defined]
    assert isinstance(length, int)
    return length


_LIMITS = {name: _limit(name) for name in ("event_type", "channel_id", "client_id", "dedup_key")}


def clean_text(value: str, limit: int | None = None) -> str:
    """``value`` without NUL bytes and lone surrogates, cut to ``limit`` characters."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", errors="replace").decode("utf-8")
    return value if limit is None else value[:limit]


def _clean_or_none(value: str | None, column: str) -> str | None:
    return None if value is None else (clean_text(value, _LIMITS[column]) or None)


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` (names lower-cased) without the ones that can carry credentials."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in _SECRET_HEADERS or any(word in lower for word in _SECRET_WORDS):
            continue
        kept[clean_text(lower, _MAX_HEADER)] = clean_text(value, _MAX_HEADER)
    return kept


def body_dedup_key(body: str | bytes) -> str:
    """A dedup key for an event without a usable id of its own: the body's SHA-256."""
    raw = body.encode() if isinstance(body, str) else body
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _by_key(session: Session, dedup_key: str) -> InboundEvent | None:
    return session.exec(select(InboundEvent).where(InboundEvent.dedup_key == dedup_key)).first()


def _as_text(body: str | bytes) -> str:
    """The body as storable text: bytes that are not UTF-8, and NUL, as backslash escapes."""
    text = body if isinstance(body, str) else body.decode("utf-8", errors="backslashreplace")
    text = text.replace("\x00", "\\x00")
    return clean_text(text)


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
    body_sha256: str | None = None,
    body_size: int | None = None,
) -> tuple[InboundEvent, bool]:
    """Store the event unless its ``dedup_key`` is known; return ``(event, stored_now)``.

    Strings are fitted to their columns as the module describes; ``body`` is stored whole (the
    caller bounds it for rejections).
    """
    dedup_key = clean_text(dedup_key, _LIMITS["dedup_key"])
    existing = _by_key(session, dedup_key)
    if existing is not None:
        return existing, False
    event = InboundEvent(
        dedup_key=dedup_key,
        event_type=_clean_or_none(event_type, "event_type"),
        channel_id=_clean_or_none(channel_id, "channel_id"),
        client_id=_clean_or_none(client_id, "client_id"),
        body=_as_text(body),
        headers=safe_headers(headers),
        received_at=received_at or utcnow(),
        outcome=outcome,
        error=None if error is None else clean_text(error),
        body_sha256=body_sha256,
        body_size=body_size,
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


MAX_RETRY_DELAY = 3600.0
"""The longest wait (s) between two attempts of a failed event."""


def retry_delay(attempts: int, first: float) -> float:
    """Seconds before attempt ``attempts + 1``: none after the first, then ``first``, doubling.

    The first failure (usually the live receiver's) is retried by the next replay, as before;
    from then on the waits grow, capped at :data:`MAX_RETRY_DELAY`.
    """
    if attempts <= 1:
        return 0.0
    return min(first * 2 ** (attempts - 2), MAX_RETRY_DELAY)


def mark_event(
    session: Session,
    *,
    event_id: int,
    outcome: str,
    error: str | None = None,
    retry_after: float = 0.0,
    max_attempts: int | None = None,
) -> InboundEvent:
    """Record what handling the event came to; counts the attempt and stamps settled outcomes.

    A ``failed`` event gets its ``retry_at`` (:func:`retry_delay` from ``retry_after``), or
    becomes ``dead`` once it has had ``max_attempts`` attempts.
    """
    event = session.get(InboundEvent, event_id)
    if event is None:
        raise LookupError(f"no inbound event with id {event_id}")
    event.attempts += 1
    if outcome == EventOutcome.FAILED and max_attempts and event.attempts >= max_attempts:
        outcome = EventOutcome.DEAD
    event.outcome = outcome
    event.error = None if error is None else clean_text(error)
    event.retry_at = None
    if outcome == EventOutcome.FAILED:
        event.retry_at = utcnow() + timedelta(seconds=retry_delay(event.attempts, retry_after))
    if outcome in _STAMPED:
        event.handled_at = utcnow()
    session.add(event)
    session.flush()
    return event


def due_events(
    session: Session, *, accepted_before: datetime, now: datetime, limit: int = 100
) -> list[InboundEvent]:
    """Events the replay should hand on now, oldest first.

    ``accepted`` ones received before ``accepted_before`` (younger ones may be in the live
    receiver's hands) and ``failed`` ones whose ``retry_at`` has passed. Rows waiting for a
    later retry are not read at all, so they cannot crowd out the events behind them.
    """
    statement = (
        select(InboundEvent)
        .where(
            or_(
                and_(
                    InboundEvent.outcome == EventOutcome.ACCEPTED,
                    col(InboundEvent.received_at) <= accepted_before,
                ),
                and_(
                    InboundEvent.outcome == EventOutcome.FAILED,
                    or_(col(InboundEvent.retry_at).is_(None), col(InboundEvent.retry_at) <= now),
                ),
            )
        )
        .order_by(col(InboundEvent.received_at), col(InboundEvent.id))
        .limit(limit)
    )
    return list(session.exec(statement))


def prune_inbox(session: Session, *, received_before: datetime) -> int:
    """Delete settled events received before ``received_before``; return how many went.

    ``accepted`` and ``failed`` events stay whatever their age: they are still to be handed on.
    """
    result = session.execute(
        delete(InboundEvent).where(
            col(InboundEvent.outcome).not_in(UNHANDLED),
            col(InboundEvent.received_at) < received_before,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
