"""Replay: events whose handoff failed or never ran are handed on later, none lost, none twice."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import select

from onboarding.alerts import AlertService
from onboarding.receiver import HandoffEvent, create_app, replay_unhandled
from onboarding.store import (
    Alert,
    InboundEvent,
    body_dedup_key,
    session_scope,
    store_inbound_event,
    utcnow,
)
from onboarding.store.inbox import MAX_RETRY_DELAY, retry_delay
from tests.fixtures.sinks import SinkServer
from tests.receiver.conftest import StartReceiver
from tests.receiver.support import (
    TOKEN,
    RecordingHandoff,
    Served,
    envelope,
    handed,
    inbox_row,
    serve_receiver,
    wait_until,
)

ONE_BACKEND = pytest.mark.parametrize("test_database", ["sqlite"], indirect=True)
OUTCOMES = ("accepted", "failed", "handled", "ignored", "rejected", "dead")


async def _post(receiver: Served, body: bytes) -> int:
    response = await asyncio.to_thread(receiver.post, body)
    assert response.status_code == 202
    return int(response.json()["inbox_id"])


async def test_failed_handoff_is_kept_and_replayed(
    start_receiver: StartReceiver, engine: Engine
) -> None:
    """Prefect unreachable: the event is answered 202, kept failed, and the replay hands it on."""
    down = RecordingHandoff(error=ConnectionError("connect to prefect: connection refused\nmore"))
    receiver = start_receiver(down, retry_after=0)
    inbox_id = await _post(receiver, envelope("channel_ready", id="ch-7", client_id="cl-7"))
    failed = await asyncio.to_thread(receiver.settled, inbox_id, "failed")
    assert failed.error == "ConnectionError: connect to prefect: connection refused"

    up = RecordingHandoff()
    report = await replay_unhandled(engine, up, min_age=0)

    assert (report.handled, report.failed, report.dead) == (1, 0, [])
    row = receiver.row(inbox_id)
    assert (row.outcome, row.error, row.attempts) == ("handled", None, 2)
    [event] = up.calls
    assert handed(event) == (inbox_id, "channel_ready", "ch-7", "cl-7")
    assert (await replay_unhandled(engine, up, min_age=0)).attempted == 0


@ONE_BACKEND
async def test_unhandled_events_wait_min_age_before_replay(
    start_receiver: StartReceiver, engine: Engine
) -> None:
    """Events never handed on are replayed, but not while young enough to be in flight."""
    receiver = start_receiver(None)
    first = await _post(receiver, envelope("channel_created", id="ch-1"))
    second = await _post(receiver, envelope("channel_live", id="ch-1"))
    handoff = RecordingHandoff()

    early = await replay_unhandled(engine, handoff)
    assert (early.attempted, handoff.calls) == (0, [])

    report = await replay_unhandled(engine, handoff, min_age=0)
    assert report.handled == 2
    assert [event.inbox_id for event in handoff.calls] == [first, second]
    assert {receiver.row(i).outcome for i in (first, second)} == {"handled"}


@ONE_BACKEND
async def test_replay_settles_rows_it_cannot_hand_on(engine: Engine) -> None:
    """An accepted row whose body no longer parses is rejected; an unknown event is ignored."""
    bodies = {"broken": "{not json", "unknown": envelope("made_up_event").decode()}
    with session_scope(engine) as session:
        ids = {}
        for name, body in bodies.items():
            row, _ = store_inbound_event(
                session, dedup_key=body_dedup_key(body), body=body, headers={}
            )
            session.flush()
            ids[name] = row.id
    handoff = RecordingHandoff()

    report = await replay_unhandled(engine, handoff, min_age=0)

    assert (report.rejected, report.ignored, handoff.calls) == (1, 1, [])
    with session_scope(engine) as session:
        broken = session.get(InboundEvent, ids["broken"])
        unknown = session.get(InboundEvent, ids["unknown"])
        assert broken is not None
        assert unknown is not None
        assert (broken.outcome, unknown.outcome) == ("rejected", "ignored")
        assert "not valid JSON" in (broken.error or "")


@ONE_BACKEND
def test_handoff_cut_off_by_shutdown_is_replayed(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Shutdown cancels a handoff still running past drain_timeout; its row waits for the replay."""
    gate = threading.Event()
    stuck = RecordingHandoff(gate=gate)
    app = create_app(engine=engine, token=SecretStr(TOKEN), handoff=stuck, drain_timeout=0.2)
    try:
        with serve_receiver(app) as base, httpx.Client(timeout=15) as client:
            url = f"{base}/hooks/360dialog/{TOKEN}"
            inbox_id = client.post(url, content=envelope()).json()["inbox_id"]
            wait_until(lambda: stuck.calls, what="the handoff to start")
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 5
        assert "1 handoff(s) cancelled at shutdown" in caplog.text
    finally:
        gate.set()
    assert inbox_row(engine, inbox_id).outcome == "accepted"

    report = asyncio.run(replay_unhandled(engine, RecordingHandoff(), min_age=0))
    assert report.handled == 1
    assert inbox_row(engine, inbox_id).outcome == "handled"


@dataclass
class PoisonedHandoff:
    """Fails every event of a channel whose id starts with ``poison``; hands on the rest."""

    calls: list[str] = field(default_factory=list)

    async def __call__(self, event: HandoffEvent) -> str:
        """Raise for poisoned channels, answer ``handled`` for the others."""
        self.calls.append(event.channel_id or "")
        if (event.channel_id or "").startswith("poison"):
            raise ValueError(f"cannot hand on {event.channel_id}")
        return "handled"


def _stored(engine: Engine, channel: str, *, minutes_ago: float) -> int:
    body = envelope("channel_ready", id=channel)
    with session_scope(engine) as session:
        row, _ = store_inbound_event(
            session,
            dedup_key=body_dedup_key(body),
            body=body,
            headers={},
            event_type="channel_ready",
            channel_id=channel,
            received_at=utcnow() - timedelta(minutes=minutes_ago),
        )
        session.flush()
        assert row.id is not None
        return row.id


async def test_poisoned_events_at_the_head_do_not_hold_up_a_later_one(
    engine: Engine, alert_sink: SinkServer
) -> None:
    """Three failing events first in line: the good one behind them is handed on at once."""
    poisoned = [_stored(engine, f"poison-{n}", minutes_ago=10 - n) for n in range(3)]
    good = _stored(engine, "ch-good", minutes_ago=1)
    alerts = AlertService(engine, urls=[alert_sink.url])

    report = await replay_unhandled(engine, PoisonedHandoff(), min_age=0, alerts=alerts)

    assert (report.handled, report.failed, report.dead) == (1, 3, [])
    assert inbox_row(engine, good).outcome == "handled"
    assert [inbox_row(engine, i).outcome for i in poisoned] == ["failed"] * 3


async def test_poisoned_events_end_dead_after_the_last_attempt_with_one_alert(
    engine: Engine, alert_sink: SinkServer
) -> None:
    """Each poisoned event gets max_attempts tries, then is dead; one inbox_dead alert says so."""
    poisoned = [_stored(engine, f"poison-{n}", minutes_ago=10 - n) for n in range(3)]
    handoff = PoisonedHandoff()
    alerts = AlertService(engine, urls=[alert_sink.url])

    reports = [
        await replay_unhandled(engine, handoff, min_age=0, max_attempts=3, alerts=alerts)
        for _ in range(4)
    ]

    assert [len(r.dead) for r in reports] == [0, 0, 3, 0]
    assert reports[-1].attempted == 0
    assert len(handoff.calls) == 9
    rows = [inbox_row(engine, i) for i in poisoned]
    assert {(row.outcome, row.attempts) for row in rows} == {("dead", 3)}
    assert rows[0].error == "ValueError: cannot hand on poison-0"
    with session_scope(engine) as session:
        [alert] = session.exec(select(Alert)).all()
    assert (alert.kind, alert.resolved_at) == ("inbox_dead", None)
    [notice] = alert_sink.received
    assert all(f"#{i}" in notice["message"] for i in poisoned)


@ONE_BACKEND
async def test_a_failed_event_waits_for_its_retry_time(
    start_receiver: StartReceiver, engine: Engine
) -> None:
    """A first failure is retried at the next replay; later ones wait, doubling per attempt."""
    down = RecordingHandoff(error=OSError("down"))
    receiver = start_receiver(down, retry_after=60)
    inbox_id = await _post(receiver, envelope("channel_ready", id="ch-wait"))
    first = await asyncio.to_thread(receiver.settled, inbox_id, "failed")
    assert first.retry_at is not None
    assert first.retry_at <= utcnow()  # the next replay retries a first failure

    again = await replay_unhandled(engine, down, min_age=60)
    second = receiver.row(inbox_id)
    too_soon = await replay_unhandled(engine, down, min_age=60)

    assert (again.failed, second.attempts, too_soon.attempted) == (1, 2, 0)
    assert second.retry_at is not None
    assert timedelta(seconds=55) < second.retry_at - utcnow() <= timedelta(seconds=60)
    assert [retry_delay(n, 60) for n in (1, 2, 3, 4)] == [0, 60, 120, 240]
    assert retry_delay(20, 60) == MAX_RETRY_DELAY


async def test_replay_prunes_old_settled_events_but_never_unhandled_ones(engine: Engine) -> None:
    """The replay deletes handled, dead, rejected and ignored rows past retention, nothing else."""
    old = 31 * 24 * 60
    ids = {name: _stored(engine, f"ch-{name}", minutes_ago=old) for name in OUTCOMES}
    recent = _stored(engine, "ch-recent", minutes_ago=60)
    with session_scope(engine) as session:
        for name, inbox_id in ids.items():
            row = session.get(InboundEvent, inbox_id)
            assert row is not None
            row.outcome = name
            session.add(row)
        recent_row = session.get(InboundEvent, recent)
        assert recent_row is not None
        recent_row.outcome = "handled"
    down = RecordingHandoff(error=OSError("down"))

    report = await replay_unhandled(engine, down, min_age=10**9, retention_days=30)

    assert report.pruned == 4
    with session_scope(engine) as session:
        left = {row.outcome for row in session.exec(select(InboundEvent))}
        assert len(session.exec(select(InboundEvent)).all()) == 3
    assert left == {"accepted", "failed", "handled"}
