"""Good deliveries: stored first, answered 202, handed on once, redeliveries recognised."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.receiver.conftest import StartReceiver
from tests.receiver.support import RecordingHandoff, Served, envelope, handed, wait_until

ONE_BACKEND = pytest.mark.parametrize("test_database", ["sqlite"], indirect=True)


def test_good_event_is_stored_answered_and_handed_on(
    receiver: Served, handoff: RecordingHandoff
) -> None:
    """A channel_created event is answered 202, stored, and handed on once with its ids."""
    body = envelope("channel_created", id="ch-9", client={"id": "cl-3"}, status="created")
    response = receiver.post(body, headers={"User-Agent": "360dialog"})

    assert response.status_code == 202
    inbox_id = response.json()["inbox_id"]
    assert response.json() == {"status": "accepted", "inbox_id": inbox_id}
    row = receiver.settled(inbox_id, "handled")
    assert (row.event_type, row.channel_id, row.client_id) == ("channel_created", "ch-9", "cl-3")
    assert row.body == body.decode()
    assert row.headers["user-agent"] == "360dialog"
    assert row.attempts == 1
    [event] = handoff.calls
    assert handed(event) == (inbox_id, "channel_created", "ch-9", "cl-3")
    assert event.data["status"] == "created"


def test_answer_comes_before_a_slow_handoff_finishes(start_receiver: StartReceiver) -> None:
    """The 202 arrives while the handoff is still waiting; the row settles only after it ends."""
    gate = threading.Event()
    handoff = RecordingHandoff(gate=gate)
    receiver = start_receiver(handoff)
    try:
        response = receiver.post(envelope())
        assert response.status_code == 202
        inbox_id = response.json()["inbox_id"]
        wait_until(lambda: handoff.calls, what="the handoff to start")
        assert receiver.row(inbox_id).outcome == "accepted"
    finally:
        gate.set()
    receiver.settled(inbox_id, "handled")


def test_same_body_five_times_is_one_row_and_one_handoff(
    receiver: Served, handoff: RecordingHandoff
) -> None:
    """Five concurrent deliveries of one body make one row, one accepted answer, one handoff."""
    body = envelope()
    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(lambda _: receiver.post(body), range(5)))

    assert [r.status_code for r in responses] == [202] * 5
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses == ["accepted"] + ["duplicate"] * 4
    assert len({r.json()["inbox_id"] for r in responses}) == 1
    [row] = receiver.rows()
    receiver.settled(row.id or 0, "handled")
    assert receiver.post(body).json()["status"] == "duplicate"
    assert len(handoff.calls) == 1


def test_redelivery_of_a_failed_event_hands_it_on_again(
    receiver: Served, handoff: RecordingHandoff
) -> None:
    """A redelivered body whose first handoff failed is handed on again, and then handled."""
    handoff.error = ConnectionError("prefect unreachable")
    inbox_id = receiver.post(envelope()).json()["inbox_id"]
    receiver.settled(inbox_id, "failed")

    handoff.error = None
    response = receiver.post(envelope())
    assert response.json() == {"status": "duplicate", "inbox_id": inbox_id}
    row = receiver.settled(inbox_id, "handled")
    assert (row.attempts, row.error, len(handoff.calls)) == (2, None, 2)


def test_unknown_event_is_stored_ignored_and_not_handed_on(
    receiver: Served, handoff: RecordingHandoff
) -> None:
    """An unknown event name is acknowledged 202, kept as ignored with its name, not handed on."""
    response = receiver.post(envelope("brand_new_event", id="x-1", channel_id="ch-2"))

    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    [row] = receiver.rows()
    assert (row.outcome, row.event_type, row.channel_id) == ("ignored", "brand_new_event", "ch-2")
    assert handoff.calls == []


@ONE_BACKEND
def test_known_no_op_event_is_handed_on_and_the_handoff_decides(
    start_receiver: StartReceiver,
) -> None:
    """client_created goes to the handoff, whose "ignored" answer is what the row records."""
    handoff = RecordingHandoff(outcome="ignored")
    receiver = start_receiver(handoff)
    inbox_id = receiver.post(envelope("client_created", id="cl-1")).json()["inbox_id"]

    row = receiver.settled(inbox_id, "ignored")
    assert (row.client_id, row.error) == ("cl-1", None)
    assert [event.client_id for event in handoff.calls] == ["cl-1"]


@ONE_BACKEND
def test_without_a_handoff_events_are_stored_and_left_for_the_replay(
    start_receiver: StartReceiver,
) -> None:
    """With handoff=None a good event is answered 202 and stays accepted (unhandled)."""
    receiver = start_receiver(None)
    response = receiver.post(envelope())

    assert response.json()["status"] == "accepted"
    [row] = receiver.rows()
    assert (row.outcome, row.attempts) == ("accepted", 0)


def test_wrong_token_is_404_and_stores_nothing(receiver: Served, handoff: RecordingHandoff) -> None:
    """A wrong path token (same length, other length) gets a generic 404 and leaves no row."""
    for token in ["x" * len(receiver.hook_url().rsplit("/", 1)[1]), "short"]:
        response = receiver.post(envelope(), token=token)
        assert response.status_code == 404
        assert response.json() == {"error": "not found"}
    assert receiver.rows() == []
    assert handoff.calls == []


@ONE_BACKEND
def test_healthz_reports_the_database(receiver: Served) -> None:
    """GET /healthz answers 200 with the database ok when the history database answers."""
    response = receiver.client.get(f"{receiver.base}/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "database": "ok"})
