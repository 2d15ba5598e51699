"""Alerts: one open alert per dedup key (race-safe), resolve, and deliveries without secrets."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from onboarding.store import (
    failed_deliveries,
    get_open_alert,
    note_alert_notified,
    open_alert,
    open_alerts,
    record_delivery,
    resolve_alert,
    session_scope,
    sink_label,
)
from tests.fixtures.database import T0
from tests.store.racing import race


def _raise(session: Session, key: str = "ch-1:stuck", now: datetime = T0, message: str = "stuck"):
    return open_alert(
        session,
        dedup_key=key,
        kind="stuck",
        severity="warning",
        partner_id="p",
        channel_id="ch-1",
        run_id=None,
        message=message,
        details={"minutes": 30},
        now=now,
    )


def test_raising_twice_keeps_one_open_alert(session: Session) -> None:
    """Raising the same problem again updates the open alert instead of opening another."""
    first, created = _raise(session)
    again, created_again = _raise(session, now=T0 + timedelta(hours=1), message="still stuck")
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert (again.first_raised_at, again.last_raised_at) == (T0, T0 + timedelta(hours=1))
    assert again.message == "still stuck"
    assert [a.id for a in open_alerts(session, channel_id="ch-1")] == [first.id]


def test_resolved_alert_lets_a_new_one_open(session: Session) -> None:
    """After a resolve the key is free: the next raise opens a new alert."""
    first, _ = _raise(session)
    resolve_alert(session, alert_id=first.id, at=T0 + timedelta(minutes=5))  # type: ignore[arg-type]
    assert get_open_alert(session, dedup_key="ch-1:stuck") is None
    second, created = _raise(session, now=T0 + timedelta(hours=1))
    assert created
    assert second.id != first.id


def test_concurrent_raises_open_one_alert(engine: Engine) -> None:
    """Two workers raising the same alert at once end with one open alert."""

    def raise_it() -> bool:
        with session_scope(engine) as session:
            return _raise(session)[1]

    assert sorted(race(raise_it)) == [False, True]
    with session_scope(engine) as session:
        assert len(open_alerts(session)) == 1


def test_notifications_are_counted(session: Session) -> None:
    """Each notice sent moves last_notified_at and the count."""
    alert, _ = _raise(session)
    note_alert_notified(session, alert_id=alert.id, at=T0)  # type: ignore[arg-type]
    noted = note_alert_notified(session, alert_id=alert.id, at=T0 + timedelta(hours=4))  # type: ignore[arg-type]
    assert (noted.notify_count, noted.last_notified_at) == (2, T0 + timedelta(hours=4))


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("slack://TokenA/TokenB/TokenC/#chan", "slack://"),
        ("json://hooks.example.com:8443/path?token=x", "json://hooks.example.com"),
        ("mailto://user:pw@gmail.com", "mailto://gmail.com"),
        ("jsons://localhost/hook", "jsons://localhost"),
        ("no-scheme-at-all", "unknown://"),
    ],
    ids=["slack-token-host", "json-host", "mailto-password", "localhost", "garbage"],
)
def test_sink_label_keeps_no_secret(url: str, label: str) -> None:
    """A sink is stored as scheme and hostname only, never tokens or passwords."""
    assert sink_label(url) == label


def test_deliveries_store_only_the_sink_label(session: Session) -> None:
    """record_delivery reduces a full Apprise URL to its label; failures are listed by time."""
    alert, _ = _raise(session)
    record_delivery(
        session,
        alert_id=alert.id,
        sink="json://h.example.com/x?k=s",
        notice="raised",
        outcome="sent",
        at=T0,
    )  # type: ignore[arg-type]
    failed = record_delivery(
        session,
        alert_id=alert.id,  # type: ignore[arg-type]
        sink="slack://TokenA/TokenB",
        notice="repeat",
        outcome="failed",
        error="HTTP 500",
        at=T0 + timedelta(hours=1),
    )
    assert failed.sink == "slack://"
    assert [d.id for d in failed_deliveries(session, since=T0)] == [failed.id]
    assert failed_deliveries(session, since=T0 + timedelta(hours=2)) == []
