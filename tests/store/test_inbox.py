"""The inbox: every webhook stored once, malformed ones kept and flagged, secrets dropped."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, func, select

from onboarding.store import (
    EventOutcome,
    InboundEvent,
    body_dedup_key,
    due_events,
    mark_event,
    prune_inbox,
    session_scope,
    store_inbound_event,
    utcnow,
)
from tests.store.racing import race

BODY = '{"event": "channel_created", "data": {"id": "ch-1", "client_id": "cl-1"}}'


def _count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(InboundEvent)).one()


def test_same_event_stored_twice_is_one_row(session: Session) -> None:
    """Storing one delivery twice keeps one row and says the second time was a duplicate."""
    first, stored_first = store_inbound_event(
        session, dedup_key="evt-1", body=BODY, headers={}, event_type="channel_created"
    )
    second, stored_second = store_inbound_event(session, dedup_key="evt-1", body=BODY, headers={})
    session.commit()
    assert (stored_first, stored_second) == (True, False)
    assert second.id == first.id
    assert _count(session) == 1


def test_malformed_event_is_stored_and_flagged(session: Session) -> None:
    """A body that is not even UTF-8 JSON is kept, rejected, with its error, not dropped."""
    raw = b'{"event": \xff broken'
    event, stored = store_inbound_event(
        session,
        dedup_key=body_dedup_key(raw),
        body=raw,
        headers={"Content-Type": "application/json"},
        outcome=EventOutcome.REJECTED,
        error="body is not valid JSON",
    )
    session.commit()
    session.expire_all()
    kept = session.get(InboundEvent, event.id)
    assert stored
    assert kept is not None
    assert (kept.outcome, kept.error) == ("rejected", "body is not valid JSON")
    assert kept.body == '{"event": \\xff broken'
    assert kept.event_type is None
    assert due_events(session, accepted_before=utcnow(), now=utcnow()) == []


def test_secret_headers_are_not_stored(session: Session) -> None:
    """Authorization, API-key and token headers never reach the database."""
    headers = {
        "Authorization": "Bearer abc",
        "X-API-Key": "k",
        "X-Webhook-Token": "t",
        "Cookie": "s=1",
        "Content-Type": "application/json",
        "User-Agent": "360dialog",
    }
    event, _ = store_inbound_event(session, dedup_key="evt-h", body=BODY, headers=headers)
    session.commit()
    session.expire_all()
    stored = session.get(InboundEvent, event.id)
    assert stored is not None
    assert stored.headers == {"content-type": "application/json", "user-agent": "360dialog"}


def test_concurrent_stores_of_one_event_make_one_row(engine: Engine) -> None:
    """Two receivers storing the same delivery at once end with one row, one of them first."""

    def store() -> bool:
        with session_scope(engine) as session:
            return store_inbound_event(session, dedup_key="evt-race", body=BODY, headers={})[1]

    assert sorted(race(store)) == [False, True]
    with session_scope(engine) as session:
        assert _count(session) == 1


def test_handled_events_are_no_longer_due(session: Session) -> None:
    """Accepted events are due until marked; a failed one is due again once its retry_at passes."""
    a, _ = store_inbound_event(session, dedup_key="a", body=BODY, headers={})
    b, _ = store_inbound_event(session, dedup_key="b", body=BODY, headers={})
    now = utcnow()
    assert [e.dedup_key for e in due_events(session, accepted_before=now, now=now)] == ["a", "b"]
    done = mark_event(session, event_id=a.id, outcome=EventOutcome.HANDLED)  # type: ignore[arg-type]
    mark_event(session, event_id=b.id, outcome=EventOutcome.FAILED, error="boom")  # type: ignore[arg-type]
    assert done.handled_at is not None
    assert done.attempts == 1
    later = utcnow()
    assert [e.dedup_key for e in due_events(session, accepted_before=later, now=later)] == ["b"]
    assert due_events(session, accepted_before=now - timedelta(days=1), now=now) == []


def test_strings_are_fitted_to_their_columns(session: Session) -> None:
    """NUL bytes and lone surrogates go, ids are cut to 64 characters: the write cannot fail."""
    event, _ = store_inbound_event(
        session,
        dedup_key="evt-fit",
        body=b'{"a": "\x00\xff"}',
        headers={"X-Note": "a\x00b"},
        event_type="channel_\x00created" + "e" * 100,
        channel_id="ch-\ud800" + "c" * 100,
        client_id="\x00",
        error="bad \x00 input",
    )
    session.commit()
    session.expire_all()
    kept = session.get(InboundEvent, event.id)
    assert kept is not None
    assert kept.event_type == ("channel_created" + "e" * 100)[:64]
    assert kept.channel_id == ("ch-?" + "c" * 100)[:64]
    assert kept.client_id is None
    assert (kept.body, kept.headers, kept.error) == (
        '{"a": "\\x00\\xff"}',
        {"x-note": "ab"},
        "bad  input",
    )


def test_a_failure_on_the_last_attempt_is_dead(session: Session) -> None:
    """Failures get a retry time until max_attempts; the last one makes the event dead."""
    event, _ = store_inbound_event(session, dedup_key="evt-dead", body=BODY, headers={})
    assert event.id is not None
    first = mark_event(session, event_id=event.id, outcome="failed", retry_after=30, max_attempts=2)
    assert (first.outcome, first.attempts) == ("failed", 1)
    assert first.retry_at is not None
    second = mark_event(
        session, event_id=event.id, outcome="failed", retry_after=30, max_attempts=2
    )
    assert (second.outcome, second.attempts, second.retry_at) == ("dead", 2, None)
    assert second.handled_at is not None


def test_pruning_removes_old_settled_events_and_keeps_unhandled_ones(session: Session) -> None:
    """Handled, ignored, rejected and dead rows past the cutoff go; accepted and failed stay."""
    now = utcnow()
    old, recent = now - timedelta(days=31), now - timedelta(days=1)
    outcomes = ("accepted", "failed", "handled", "ignored", "rejected", "dead")
    for outcome in outcomes:
        for label, at in (("old", old), ("recent", recent)):
            store_inbound_event(
                session,
                dedup_key=f"{outcome}-{label}",
                body=BODY,
                headers={},
                outcome=outcome,
                received_at=at,
            )
    session.commit()

    pruned = prune_inbox(session, received_before=now - timedelta(days=30))
    session.commit()

    assert pruned == 4
    keys = {row.dedup_key for row in session.exec(select(InboundEvent))}
    assert keys == {f"{o}-recent" for o in outcomes} | {"accepted-old", "failed-old"}
