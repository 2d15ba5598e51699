"""A small, known onboarding history, written through the store's repository functions."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from onboarding.store import (
    mark_run_waiting,
    open_alert,
    resolve_alert,
    settle_run,
    start_or_get_run,
    store_inbound_event,
)

__all__ = ["seed_history"]

DAY = 86_400.0


def _start(session: Session, channel: str, at: datetime, deadline: float = DAY) -> int:
    run, _ = start_or_get_run(
        session,
        partner_id="p1",
        channel_id=channel,
        client_id=f"client-{channel}",
        client_name=f"Client {channel}",
        phone_number="+4915112345678",
        trigger="webhook",
        deadline_seconds=deadline,
        now=at,
    )
    assert run.id is not None
    return run.id


def _ready(session: Session, run_id: int, at: datetime, *, complete: bool = True) -> None:
    settle_run(session, run_id=run_id, state="ready", availability_status="ready", now=at)
    if complete:
        later = at + timedelta(seconds=5)
        settle_run(
            session, run_id=run_id, state="completed", availability_status="ready", now=later
        )


def seed_history(session: Session, now: datetime) -> None:
    """Seed the history around ``now`` (see the test module for the expected figures).

    In the 7-day window: 4 runs become ready (2 two days ago: 10 min and 30 min; 2 one day ago:
    1 h and 2 h), 3 of them complete; one fails (error; its reason holds its phone number and a
    channel id full of digits), one times out; one waits (overdue), one is pending; one channel
    signed up by webhook only. One run from 10 days ago lies outside the window. Alerts: two
    raised in the window (one resolved), one raised before it and still open.
    """
    two_days_ago = now - timedelta(days=2)
    one_day_ago = now - timedelta(days=1)
    for channel, start, minutes, complete in (
        ("ch-a", two_days_ago, 10, True),
        ("ch-b", two_days_ago, 30, True),
        ("ch-c", one_day_ago, 60, True),
        ("ch-d", one_day_ago, 120, False),
    ):
        run_id = _start(session, channel, start)
        _ready(session, run_id, start + timedelta(minutes=minutes), complete=complete)
    failed = _start(session, "ch-e", two_days_ago)
    settle_run(
        session,
        run_id=failed,
        state="failed",
        availability_status="error",
        failure_reason="channel 6e47562780CH went to error for +49 151 1234 5678\nstack...",
        now=two_days_ago + timedelta(hours=1),
    )
    timed_out = _start(session, "ch-f", now - timedelta(days=3), deadline=3600)
    settle_run(
        session,
        run_id=timed_out,
        state="timed_out",
        availability_status="setting_up",
        failure_reason="still setting_up after the deadline",
        now=now - timedelta(days=3) + timedelta(hours=1),
    )
    waiting = _start(session, "ch-g", now - timedelta(days=4), deadline=3600)
    mark_run_waiting(session, run_id=waiting, availability_status="setting_up")
    _start(session, "ch-h", now - timedelta(hours=1))
    old = _start(session, "ch-old", now - timedelta(days=10))
    _ready(session, old, now - timedelta(days=10) + timedelta(minutes=5))
    store_inbound_event(
        session,
        dedup_key="evt-1",
        body="{}",
        headers={},
        event_type="channel_created",
        channel_id="ch-webhook-only",
        received_at=now - timedelta(hours=2),
    )
    for key, raised, resolved in (
        ("stuck:ch-g", now - timedelta(days=1), None),
        ("failed:ch-e", two_days_ago, two_days_ago + timedelta(hours=2)),
        ("partner:auth", now - timedelta(days=9), None),
    ):
        alert, _ = open_alert(
            session,
            dedup_key=key,
            kind=key.split(":")[0],
            severity="error",
            partner_id="p1",
            channel_id=None,
            run_id=None,
            message="m",
            details=None,
            now=raised,
        )
        if resolved is not None:
            assert alert.id is not None
            resolve_alert(session, alert_id=alert.id, at=resolved)
    session.commit()
