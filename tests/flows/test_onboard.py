"""The onboarding flow, in-process, against the sandbox, a real Prefect API and real databases."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from prefect.states import State
from pydantic import SecretStr

from flows.onboard import onboard_channel
from onboarding.callback import verify
from onboarding.orchestration.outcomes import settle_onboarding
from onboarding.store import (
    RunState,
    find_runs,
    get_step,
    make_engine,
    record_step,
    session_scope,
    start_or_get_run,
)
from tests.fixtures.partner import CALLBACK_SECRET


async def _onboard(channel: dict[str, Any]) -> State:
    """Run the onboarding flow for a sandbox channel and return its final state."""
    return await onboard_channel(
        channel_id=channel["id"], client_id=channel["client_id"], return_state=True
    )


def _runs(db_url: str, channel_id: str):
    with session_scope(make_engine(db_url)) as session:
        return find_runs(session, channel_id=channel_id)


async def test_ready_at_once_completes_and_notifies_partner(
    onboarding_env, sandbox, db_url, callback_receiver
):
    """A channel already ready completes, and the partner gets one signed callback with a key."""
    channel = sandbox.create_channel(availability_status="ready", status="ready")
    state = await _onboard(channel)
    assert state.is_completed(), state.message
    [run] = _runs(db_url, channel["id"])
    assert run.state == "completed"
    [(body, headers)] = callback_receiver.calls
    assert verify(body, headers["x-onboarding-signature"], SecretStr(CALLBACK_SECRET))
    payload = json.loads(body)
    assert payload["channel_id"] == channel["id"]
    assert payload["api_key"]
    assert payload["attempt"] == 1
    assert sandbox.api_key_count(channel["id"]) == 1
    assert payload["api_key_id"] == sandbox.active_api_key_id(channel["id"])


async def test_setting_up_then_ready_waits_then_completes(onboarding_env, sandbox, db_url):
    """A channel that becomes ready after a delay is waited for and then completed."""
    channel = sandbox.create_channel(settle_after=1.0, settle_to="ready")
    state = await _onboard(channel)
    assert state.is_completed(), state.message
    [run] = _runs(db_url, channel["id"])
    assert run.state == "completed"


async def test_error_alerts_once_and_fails(onboarding_env, sandbox, db_url, alert_sink):
    """A channel that turns error fails the run with the reason and delivers one alert."""
    channel = sandbox.create_channel(
        settle_after=0.5, settle_to="error", phone_number="+4915112345678"
    )
    state = await _onboard(channel)
    assert state.is_failed()
    assert "error" in state.message
    [run] = _runs(db_url, channel["id"])
    assert run.state == "failed"
    assert "error" in (run.failure_reason or "")
    [alert] = alert_sink.received
    text = json.dumps(alert)
    assert channel["id"] in text
    assert "5678" in text
    assert "4915112345678" not in text


async def test_deadline_exceeded_times_out(onboarding_env, sandbox, db_url, monkeypatch):
    """A channel still setting_up at the deadline ends timed_out with a deadline alert."""
    monkeypatch.setenv("ONBOARDING_SETUP_DEADLINE", "0.6")
    channel = sandbox.create_channel()
    state = await _onboard(channel)
    assert state.is_failed()
    [run] = _runs(db_url, channel["id"])
    assert run.state == "timed_out"
    assert "deadline" in run.failure_reason


async def test_unknown_status_is_recorded_and_fails(onboarding_env, sandbox, db_url, alert_sink):
    """An undocumented availability_status is kept in the history, alerted on, and fails the run."""
    channel = sandbox.create_channel(availability_status="migrating")
    state = await _onboard(channel)
    assert state.is_failed()
    [run] = _runs(db_url, channel["id"])
    assert run.availability_status == "migrating"
    assert "migrating" in run.failure_reason
    assert len(alert_sink.received) == 1


async def test_transient_faults_while_waiting_are_retried(
    onboarding_env, sandbox, db_url, monkeypatch
):
    """5xx and 429 bursts during the wait are retried and the onboarding still completes."""
    monkeypatch.setenv("ONBOARDING_RETRY_DELAY", "0.05")
    channel = sandbox.create_channel(settle_after=1.0, settle_to="ready")
    sandbox.add_fault("status", count=2, http_status=503, path_contains="/channels")
    sandbox.add_fault(
        "status", count=2, http_status=429, retry_after=0.2, path_contains="/channels"
    )
    state = await _onboard(channel)
    assert state.is_completed(), state.message


async def test_bad_credentials_alert_once_without_retry_storm(
    onboarding_env, sandbox, db_url, alert_sink, monkeypatch
):
    """A 401 fails the run with one auth_failed alert and is not retried."""
    monkeypatch.setenv("D360_API_KEY", "wrong-key")
    channel = sandbox.create_channel()
    sandbox.reset_request_counts()
    state = await _onboard(channel)
    assert state.is_failed()
    assert sandbox.request_counts()["total"] == 1
    [alert] = alert_sink.received
    assert "auth" in json.dumps(alert).lower()


async def test_second_run_does_not_create_second_key(onboarding_env, sandbox, db_url):
    """Onboarding a channel twice creates its Messaging API key once."""
    channel = sandbox.create_channel(availability_status="ready", status="ready")
    for _ in range(2):
        state = await _onboard(channel)
        assert state.is_completed()
    assert sandbox.api_key_count(channel["id"]) == 1
    assert len(_runs(db_url, channel["id"])) == 1


async def test_client_id_is_looked_up_when_missing(onboarding_env, sandbox, db_url):
    """Without a client id the flow reads it from the channel and records it."""
    channel = sandbox.create_channel(availability_status="ready", status="ready")
    state = await onboard_channel(channel_id=channel["id"], return_state=True)
    assert state.is_completed()
    [run] = _runs(db_url, channel["id"])
    assert run.client_id == channel["client_id"]


async def test_follow_up_interrupted_after_it_began_delivers_a_new_key_once(
    onboarding_env, sandbox, db_url, callback_receiver
):
    """A process killed between creating the key and recording the delivery: the re-run sends
    one callback with a new key (attempt 2), which is the channel's working key."""
    channel = sandbox.create_channel(availability_status="ready", status="ready")
    with session_scope(make_engine(db_url)) as session:  # what the killed attempt left behind
        run, _ = start_or_get_run(
            session,
            partner_id=sandbox.partner_id,
            channel_id=channel["id"],
            client_id=channel["client_id"],
            trigger="schedule",
            deadline_seconds=3600,
        )
        record_step(session, run_id=run.id, step="notify_partner", outcome="started")
    async with httpx.AsyncClient(headers={"X-API-Key": sandbox.api_key}) as http:
        answer = await http.post(
            f"{sandbox.api_url}/partners/{sandbox.partner_id}/channels/{channel['id']}/api_keys"
        )
    first_key = answer.json()["id"]

    state = await _onboard(channel)

    assert state.is_completed(), state.message
    [(body, _)] = callback_receiver.calls
    payload = json.loads(body)
    assert payload["attempt"] == 2
    assert payload["api_key_id"] != first_key
    assert payload["api_key_id"] == sandbox.active_api_key_id(channel["id"])
    with session_scope(make_engine(db_url)) as session:
        step = get_step(session, run_id=run.id, step="notify_partner")
        assert (step.outcome, step.detail["attempt"]) == ("done", 2)


async def test_callback_down_past_the_retry_window_alerts_callback_failed(
    onboarding_env, sandbox, db_url, callback_receiver, alert_sink, monkeypatch
):
    """A callback that never takes the key: each attempt creates a fresh key, and once the
    retry window has passed the run fails with one ``callback_failed`` alert."""
    monkeypatch.setenv("ONBOARDING_RETRY_DELAY", "0.01")
    monkeypatch.setenv("ONBOARDING_CALLBACK_RETRY_WINDOW", "1")
    callback_receiver.fail_next(10_000, status=503)
    channel = sandbox.create_channel(availability_status="ready", status="ready")
    state = await onboard_channel(
        channel_id=channel["id"], client_id=channel["client_id"], return_state=True
    )
    assert state.is_failed()
    [run] = _runs(db_url, channel["id"])
    assert run.state == "failed"
    assert "callback" in (run.failure_reason or "")
    assert sandbox.api_key_count(channel["id"]) >= 2
    alerts = [body for body in alert_sink.received if "callback_failed" in json.dumps(body)]
    assert len(alerts) == 1


@pytest.mark.parametrize("availability", ["setting_up", "ready"])
async def test_an_onboarding_ended_while_its_run_reads_the_channel_is_not_reopened(
    onboarding_env, sandbox, db_url, monkeypatch, availability
):
    """Ended elsewhere (a cancel, say) while the run waits on the Partner API: whatever the
    channel turns out to be, the run stops there, instead of writing `waiting` or `ready` over
    the ending (and creating a key for a cancelled onboarding)."""
    monkeypatch.setenv("ONBOARDING_SETUP_DEADLINE", "20")
    settled = {"availability_status": "ready", "status": "ready"} if availability == "ready" else {}
    channel = sandbox.create_channel(**settled)
    sandbox.add_fault("slow", count=1, delay=3.0, path_contains="/channels", method="GET")
    running = asyncio.create_task(_onboard(channel))
    run = await _first_run(db_url, channel["id"])
    settle_onboarding(run_id=run.id, state=RunState.CANCELLED, reason="cancelled meanwhile")

    state = await asyncio.wait_for(running, timeout=60)
    assert state.is_completed(), state.message
    assert "nothing left to do" in state.message
    [run] = _runs(db_url, channel["id"])
    assert run.state == "cancelled"
    assert sandbox.api_key_count(channel["id"]) == 0


async def _first_run(db_url: str, channel_id: str) -> Any:
    """The channel's history run, once the flow run has claimed it (within 30 s)."""
    async with asyncio.timeout(30):
        while True:
            if runs := _runs(db_url, channel_id):
                return runs[0]
            await asyncio.sleep(0.05)
