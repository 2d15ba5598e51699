"""Replay: events whose handoff failed or never ran are handed on later, none lost, none twice."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from onboarding.receiver import create_app, replay_unhandled
from onboarding.store import InboundEvent, body_dedup_key, session_scope, store_inbound_event
from tests.receiver.conftest import StartReceiver
from tests.receiver.support import (
    TOKEN,
    RecordingHandoff,
    Served,
    envelope,
    inbox_row,
    serve_receiver,
    wait_until,
)

ONE_BACKEND = pytest.mark.parametrize("test_database", ["sqlite"], indirect=True)


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
    assert (event.inbox_id, event.event_type, event.channel_id, event.client_id) == (
        inbox_id,
        "channel_ready",
        "ch-7",
        "cl-7",
    )
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
