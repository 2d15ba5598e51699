"""Partner webhooks into the deployed product: signup to completion, duplicates, outages."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr

from onboarding.receiver import create_app
from onboarding.store import make_engine, session_scope
from tests.e2e.helpers import flow_runs_named, history_runs, sweep_now, wait_for
from tests.servers import serve_in_thread

pytestmark = pytest.mark.slow


def _inbox(db_url: str, channel_id: str) -> list:
    from sqlmodel import select

    from onboarding.store import InboundEvent

    with session_scope(make_engine(db_url)) as session:
        statement = select(InboundEvent).where(InboundEvent.channel_id == channel_id)
        return list(session.exec(statement))


def test_signup_webhook_to_completed_run(deployed, sandbox, callback_receiver):
    """channel_created starts a named, tagged run; the channel turning ready completes it."""
    channel = sandbox.create_channel(settle_after=3, settle_to="ready")
    name = f"onboard-{channel['client_id']}-{channel['id']}"
    [flow_run] = wait_for(lambda: flow_runs_named(name), what="the onboarding flow run")
    assert {"onboarding", f"client:{channel['client_id']}", "partner:sandbox-partner"} <= set(
        flow_run.tags
    )
    wait_for(
        lambda: flow_runs_named(name)[0].state.is_completed(),
        what="the onboarding to complete",
        timeout=120,
    )
    [run] = history_runs(deployed.db_url, channel["id"])
    assert run.trigger == "webhook"
    assert run.state == "completed"
    with session_scope(make_engine(deployed.db_url)) as session:
        from onboarding.store import channel_timeline

        statuses = [
            o.availability_status for o in channel_timeline(session, channel_id=channel["id"])
        ]
    assert statuses[-1] == "ready"
    assert len(callback_receiver.calls) == 1


def test_same_webhook_five_times_makes_one_run(deployed, sandbox):
    """A webhook redelivered five times is stored once and starts one onboarding."""
    channel = sandbox.create_channel(send_webhook=False)
    body = json.dumps({"event": "channel_created", "data": sandbox.channel(channel["id"])})
    answers = [
        httpx.post(deployed.hook_url, content=body, headers={"content-type": "application/json"})
        for _ in range(5)
    ]
    assert [a.status_code for a in answers] == [202] * 5
    name = f"onboard-{channel['client_id']}-{channel['id']}"
    wait_for(lambda: flow_runs_named(name), what="the onboarding flow run")
    wait_for(
        lambda: all(e.outcome == "handled" for e in _inbox(deployed.db_url, channel["id"])),
        what="the event to be handled",
    )
    assert len(_inbox(deployed.db_url, channel["id"])) == 1
    assert len(flow_runs_named(name)) == 1
    assert len(history_runs(deployed.db_url, channel["id"])) == 1


def test_channel_error_alerts_once_and_fails_the_run(deployed, sandbox, alert_sink):
    """A channel that turns error delivers one alert to the JSON webhook; its run ends Failed."""
    channel = sandbox.create_channel(settle_after=2, settle_to="error")
    name = f"onboard-{channel['client_id']}-{channel['id']}"
    wait_for(lambda: flow_runs_named(name), what="the onboarding flow run")
    wait_for(
        lambda: history_runs(deployed.db_url, channel["id"])[0].state == "waiting",
        what="the run to be parked",
    )
    wait_for(
        lambda: sandbox.channel(channel["id"])["availability_status"] == "error",
        what="the channel to turn error",
    )
    sweep_now()  # no webhook for errors: the watcher notices and wakes the run
    wait_for(
        lambda: flow_runs_named(name)[0].state.is_failed(), what="the run to fail", timeout=120
    )
    [flow_run] = flow_runs_named(name)
    assert "error" in flow_run.state.message
    alerts = [a for a in alert_sink.received if channel["id"] in json.dumps(a)]
    assert len(alerts) == 1
    sweep_now()  # a later sweep does not alert again
    assert len([a for a in alert_sink.received if channel["id"] in json.dumps(a)]) == 1


def test_prefect_unreachable_keeps_event_and_sweep_replays_it(deployed, sandbox):
    """With Prefect unreachable the webhook still gets 202 and is kept; the sweep replays it."""

    async def prefect_down(event):
        raise httpx.ConnectError("All connection attempts failed (Prefect API)")

    app = create_app(
        engine=make_engine(deployed.db_url),
        token=SecretStr("outage-token"),
        handoff=prefect_down,
    )
    channel = sandbox.create_channel(send_webhook=False)
    body = json.dumps({"event": "channel_created", "data": sandbox.channel(channel["id"])})
    with serve_in_thread(app) as url:
        answer = httpx.post(f"{url}/hooks/360dialog/outage-token", content=body)
        assert answer.status_code == 202
        wait_for(
            lambda: [e.outcome for e in _inbox(deployed.db_url, channel["id"])] == ["failed"],
            what="the handoff failure to be recorded",
        )
    assert history_runs(deployed.db_url, channel["id"]) == []
    sweep_now()
    [event] = _inbox(deployed.db_url, channel["id"])
    assert event.outcome == "handled"
    [run] = history_runs(deployed.db_url, channel["id"])
    assert run.trigger in {"webhook", "replay", "schedule"}
    name = f"onboard-{channel['client_id']}-{channel['id']}"
    assert len(flow_runs_named(name)) == 1


@pytest.mark.parametrize(
    ("path_token", "body", "status"),
    [
        pytest.param("e2e-webhook-token", b"{not json", 400, id="malformed-400"),
        pytest.param("e2e-webhook-token", b"x" * 300_000, 413, id="oversized-413"),
        pytest.param("wrong-token", b'{"event":"channel_created","data":{}}', 404, id="token-404"),
    ],
)
def test_bad_requests_get_clear_status_codes(deployed, path_token, body, status):
    """Malformed, oversized and wrong-token requests get 400, 413 and 404; the receiver lives on."""
    answer = httpx.post(f"{deployed.receiver_url}/hooks/360dialog/{path_token}", content=body)
    assert answer.status_code == status
    assert httpx.get(f"{deployed.receiver_url}/healthz").status_code == 200
