"""The lifecycle against the deployed product: cancellations, lost runs, resets, adoption, rekey."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled, Cancelling
from sqlalchemy import MetaData, delete, select

from onboarding.orchestration.flow_runs import DEPLOYMENT_NAME
from onboarding.store import make_engine
from tests.e2e.helpers import history_runs, sweep_now, wait_for

pytestmark = pytest.mark.slow


def _post(deployed, event: str, data: dict) -> httpx.Response:
    body = json.dumps({"event": event, "data": data})
    return httpx.post(deployed.hook_url, content=body, headers={"content-type": "application/json"})


def _parked(deployed, channel_id: str):
    """The channel's active history run once it has its parked flow run."""

    def ready():
        runs = [r for r in history_runs(deployed.db_url, channel_id) if r.is_active]
        return runs[0] if runs and runs[0].flow_run_id else None

    return wait_for(ready, what=f"a parked onboarding of {channel_id}")


def _state(deployed, channel_id: str) -> str | None:
    runs = history_runs(deployed.db_url, channel_id)
    return runs[0].state if runs else None


def _flow_run_state(flow_run_id: str):
    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(flow_run_id)).state


def _wipe_history(db_url: str) -> None:
    """Empty every history table: a new installation on the same Prefect server."""
    engine = make_engine(db_url)
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            if table.name != "alembic_version":
                connection.execute(delete(table))
    engine.dispose()


def test_cancellation_event_ends_the_onboarding_cancelled(
    deployed, sandbox, callback_receiver, alert_sink
):
    """channel_cancelled ends the waiting onboarding ``cancelled``: no alert, no callback."""
    channel = sandbox.create_channel()
    run = _parked(deployed, channel["id"])
    assert _post(deployed, "channel_cancelled", {"id": channel["id"]}).status_code == 202
    wait_for(lambda: _state(deployed, channel["id"]) == "cancelled", what="the cancellation")
    wait_for(lambda: _flow_run_state(run.flow_run_id).is_cancelled(), what="its flow run")
    sweep_now()
    assert _state(deployed, channel["id"]) == "cancelled"
    assert callback_receiver.calls == []
    assert not [body for body in alert_sink.received if channel["id"] in json.dumps(body)]


def test_run_cancelled_in_prefect_stays_cancelled_until_onboard(
    deployed, sandbox, callback_receiver
):
    """A parked run a person cancels in Prefect ends the onboarding ``cancelled``; three sweeps
    leave it so; ``onboarding onboard`` starts it again and it completes."""
    channel = sandbox.create_channel()
    run = _parked(deployed, channel["id"])
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(run.flow_run_id), Cancelled(), force=True)
    sweep_now()
    assert _state(deployed, channel["id"]) == "cancelled"
    for _ in range(3):
        sweep_now()
    assert [r.state for r in history_runs(deployed.db_url, channel["id"])] == ["cancelled"]
    sandbox.set_status(channel["id"], "ready", status="ready")
    result = subprocess.run(
        [sys.executable, "-m", "onboarding.cli", "onboard", channel["id"]],
        env={**os.environ, **deployed.env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert [r.state for r in history_runs(deployed.db_url, channel["id"])] == [
        "completed",
        "cancelled",
    ]
    assert len(callback_receiver.calls) == 1


def test_deleted_flow_run_is_recreated_and_completes(deployed, sandbox, callback_receiver):
    """A parked flow run that disappears from Prefect gets a new one at the next sweep."""
    channel = sandbox.create_channel(send_webhook=False)
    sweep_now()
    run = _parked(deployed, channel["id"])
    with get_client(sync_client=True) as client:
        client.delete_flow_run(UUID(run.flow_run_id))
    sweep_now()
    again = _parked(deployed, channel["id"])
    assert again.id == run.id
    assert again.flow_run_id != run.flow_run_id
    sandbox.set_status(channel["id"], "ready", status="ready")
    sweep_now()
    wait_for(lambda: _state(deployed, channel["id"]) == "completed", what="completion", timeout=120)
    assert len(callback_receiver.calls) == 1


def _onboarding_deployment_id() -> UUID | None:
    with get_client(sync_client=True) as client:
        try:
            return client.read_deployment_by_name(DEPLOYMENT_NAME).id
        except ObjectNotFound:
            return None


def _flow_run_of_deployment(flow_run_id: str, deployment_id: UUID):
    """The flow run once it completed (the history closes just before the run ends)."""
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(flow_run_id))
    return flow_run if flow_run.state.is_completed() else None


def test_reset_history_under_the_same_prefect_still_onboards(deployed, sandbox, callback_receiver):
    """After the history is emptied, the same channel ids onboard again and complete: no flow
    run of the old history is reused."""
    channels = [sandbox.create_channel(settle_after=2, settle_to="ready") for _ in range(3)]
    for channel in channels:
        wait_for(lambda c=channel: _state(deployed, c["id"]) == "completed", timeout=120)
    _wipe_history(deployed.db_url)
    callback_receiver.calls.clear()
    for channel in channels:
        sandbox.set_status(channel["id"], "setting_up", status="created")
        assert _post(deployed, "channel_created", sandbox.channel(channel["id"])).status_code == 202
        _parked(deployed, channel["id"])
        sandbox.set_status(channel["id"], "ready", status="ready")
    sweep_now()
    for channel in channels:
        wait_for(lambda c=channel: _state(deployed, c["id"]) == "completed", timeout=120)
    assert len(callback_receiver.calls) == len(channels)


def test_channels_ready_before_install_are_adopted_never_keyed(
    deployed, sandbox, callback_receiver, alert_sink
):
    """20 channels ready before the first sweep, then channel_live for each: no key, no
    callback, no alert; ``onboarding onboard`` creates none either and points to ``rekey``;
    ``onboarding rekey --yes`` rotates one on purpose."""
    _wipe_history(deployed.db_url)
    ready = sandbox.bulk_channels(20, availability_status="ready", status="ready")
    alert_sink.reset()
    summary = sweep_now()
    assert summary is not None
    for channel_id in ready:
        assert _post(deployed, "channel_live", sandbox.channel(channel_id)).status_code == 202
    sweep_now()
    assert {_state(deployed, channel_id) for channel_id in ready} == {"adopted"}
    assert sum(sandbox.api_key_count(channel_id) for channel_id in ready) == 0
    assert callback_receiver.calls == []
    assert alert_sink.received == []

    # `onboarding onboard` on an adopted channel: no key, and the way to rotate one on purpose.
    onboard = subprocess.run(
        [sys.executable, "-m", "onboarding.cli", "onboard", ready[1]],
        env={**os.environ, **deployed.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert onboard.returncode == 0, onboard.stderr[-2000:]
    assert "onboarding rekey" in " ".join(onboard.stdout.split())
    assert sandbox.api_key_count(ready[1]) == 0
    assert callback_receiver.calls == []

    result = subprocess.run(
        [sys.executable, "-m", "onboarding.cli", "rekey", ready[0], "--yes"],
        env={**os.environ, **deployed.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stops working" in " ".join(result.stdout.split())
    assert sandbox.api_key_count(ready[0]) == 1
    [(body, _)] = callback_receiver.calls
    assert json.loads(body)["api_key_id"] == sandbox.active_api_key_id(ready[0])


def test_callback_outage_retries_with_fresh_keys_until_delivered(
    deployed, sandbox, callback_receiver
):
    """The callback refuses two whole attempts: the onboarding waits ``undelivered``, retries
    with a fresh key each time, and the partner ends holding the channel's active key."""
    callback_receiver.fail_next(8, status=503)  # two attempts of four quick tries each
    channel = sandbox.create_channel(settle_after=1, settle_to="ready")
    wait_for(lambda: _state(deployed, channel["id"]) == "undelivered", what="undelivered")

    def delivered_after_a_sweep() -> bool:
        sweep_now()  # wakes the onboarding once its next attempt is due
        return _state(deployed, channel["id"]) == "completed"

    wait_for(delivered_after_a_sweep, what="delivery", timeout=240)
    [(body, _)] = callback_receiver.calls
    delivered = json.loads(body)
    assert delivered["attempt"] >= 2
    assert delivered["api_key_id"] == sandbox.active_api_key_id(channel["id"])
    assert sandbox.api_key_count(channel["id"]) >= 2
    key = delivered["api_key"]
    assert key not in deployed.log_path.read_text()  # the executor's log: flows, tasks, Prefect
    engine = make_engine(deployed.db_url)
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        rows = [
            repr(tuple(row))
            for t in metadata.sorted_tables
            for row in connection.execute(select(t))
        ]
    engine.dispose()
    assert not any(key in row for row in rows)


def test_ready_webhooks_racing_a_sweep_wake_each_onboarding_once(
    deployed, sandbox, callback_receiver
):
    """channel_ready webhooks and a sweep arriving together for 50 channels: one key and one
    callback per channel."""
    channels = [sandbox.create_channel() for _ in range(50)]
    for channel in channels:
        _parked(deployed, channel["id"])
    for channel in channels:
        sandbox.set_status(channel["id"], "ready", status="ready", send_webhook=False)
    sweeper = threading.Thread(target=sweep_now)
    sweeper.start()
    for channel in channels:
        _post(deployed, "channel_ready", sandbox.channel(channel["id"]))
    sweeper.join()
    for channel in channels:
        wait_for(lambda c=channel: _state(deployed, c["id"]) == "completed", timeout=300)
    assert len(callback_receiver.calls) == len(channels)
    assert [sandbox.api_key_count(c["id"]) for c in channels] == [1] * len(channels)


def test_client_permission_is_waited_for_without_an_auth_alert(
    deployed, sandbox, callback_receiver, alert_sink
):
    """A client who has not granted permission: the onboarding waits ``permission`` with no
    ``auth_failed``, and completes once ``channel_permission_granted`` arrives."""
    channel = sandbox.create_channel(settle_after=1, settle_to="ready", needs_permission=True)
    wait_for(lambda: _state(deployed, channel["id"]) == "permission", what="the permission wait")
    assert "auth_failed" not in json.dumps(alert_sink.received)
    sandbox._call("POST", f"/channels/{channel['id']}/permission")
    wait_for(lambda: _state(deployed, channel["id"]) == "completed", what="completion", timeout=120)
    [(body, _)] = callback_receiver.calls
    assert json.loads(body)["api_key_id"] == sandbox.active_api_key_id(channel["id"])


def test_wrapped_key_answer_completes_the_onboarding(deployed, sandbox, callback_receiver):
    """Key creation answered as ``{"api_keys": [...]}`` still delivers the key."""
    sandbox.configure(key_shape="wrapped")
    channel = sandbox.create_channel(settle_after=1, settle_to="ready")
    wait_for(lambda: _state(deployed, channel["id"]) == "completed", what="completion", timeout=120)
    [(body, _)] = callback_receiver.calls
    assert json.loads(body)["api_key"]


def test_signup_redirect_starts_every_verified_channel_at_once(deployed, sandbox):
    """The signup redirect with ``channels=[a,b]`` answers 303 and opens both onboardings
    before any webhook; a forged id is not started."""
    answer = sandbox._call(
        "POST",
        "/signup",
        json={
            "channels": 2,
            "send_webhook": False,
            "redirect_url": f"{deployed.receiver_url}/signup/360dialog",
            "call": True,
        },
    )
    assert answer["called"]["status_code"] == 303
    assert answer["called"]["location"].startswith("https://partner.example/welcome?client=")
    for channel_id in answer["channel_ids"]:
        run = _parked(deployed, channel_id)
        assert run.trigger == "signup"
    forged = httpx.get(
        f"{deployed.receiver_url}/signup/360dialog",
        params={"client": answer["client_id"], "channels": "[forged123]"},
        follow_redirects=False,
    )
    assert forged.status_code == 303
    assert history_runs(deployed.db_url, "forged123") == []


def test_channel_without_status_is_recorded_as_unknown_by_the_sweep(deployed, sandbox, alert_sink):
    """A tracked channel that comes back without ``availability_status``: the sweep completes,
    and the onboarding ends on one ``unknown_status`` alert."""
    channel = sandbox.create_channel()
    _parked(deployed, channel["id"])
    sandbox.set_status(channel["id"], None, send_webhook=False)
    sweep_now()
    wait_for(lambda: _state(deployed, channel["id"]) == "failed", what="the unknown status")
    sweep_now()
    alerts = [b for b in alert_sink.received if channel["id"] in json.dumps(b)]
    assert len(alerts) == 1
    assert "status" in json.dumps(alerts[0]).lower()


def test_cancel_while_the_key_request_is_in_flight_ends_cancelled(
    deployed, sandbox, callback_receiver, alert_sink
):
    """Cancel (what the UI's Cancel does) while the key request is in flight: within seconds
    the flow run is Cancelled and the history cancelled; no key reaches the partner, no alert,
    no second key request."""
    channel_id = sandbox.create_channel(send_webhook=False)["id"]
    sweep_now()
    [run] = history_runs(deployed.db_url, channel_id)
    flow_run_id = UUID(run.flow_run_id)
    sandbox.add_fault("slow", count=1, delay=20, path_contains="api_keys", method="POST")
    alert_sink.reset()
    sandbox.set_status(channel_id, "ready", status="ready")  # its webhook wakes the run

    def key_request_in_flight() -> bool:
        with get_client(sync_client=True) as client:
            task_runs = client.read_task_runs()
        return any(
            task_run.flow_run_id == flow_run_id
            and task_run.name.startswith("notify-partner")
            and task_run.state is not None
            and task_run.state.is_running()
            for task_run in task_runs
        )

    wait_for(key_request_in_flight, timeout=90, what="the key request to be in flight")
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Cancelling(message="cancelled by a person"))

    def cancelled() -> bool:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run_id).state
        return state is not None and state.is_cancelled()

    wait_for(cancelled, timeout=30, what="the flow run to end Cancelled")
    assert wait_for(lambda: _state(deployed, channel_id) == "cancelled", timeout=10)
    assert [c for c in callback_receiver.calls if channel_id in c[0].decode()] == []
    assert [a for a in alert_sink.received if channel_id in json.dumps(a, default=str)] == []
    assert sandbox.api_key_count(channel_id) <= 1
