"""The scaled-out setup at small size: 50 onboardings on two executors, none twice, none lost."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.deployments import run_deployment
from pydantic import SecretStr
from sqlmodel import select

from deployments.scale.cluster import ClusterSpec
from onboarding.launcher.auth import auth_headers
from onboarding.receiver import create_app
from onboarding.runtime import engine_for
from onboarding.store import InboundEvent, OnboardingRun, session_scope
from tests.servers import serve_in_thread

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(900)]

SWEPT = 40  # channels whose webhooks are lost: only the sweep finds them
HOOKED = 10  # channels whose webhooks reach the receiver
TOKEN = "scale-webhook-token"


def _runs(history_url: str) -> list[OnboardingRun]:
    with session_scope(engine_for(history_url)) as session:
        return list(session.exec(select(OnboardingRun)))


def _inbox(history_url: str) -> list[InboundEvent]:
    with session_scope(engine_for(history_url)) as session:
        return list(session.exec(select(InboundEvent)))


def _sweep() -> str:
    """Run the watcher deployment once on an executor; a scheduled sweep in flight cancels ours."""
    flow_run = run_deployment("watch-channels/watch-channels", timeout=240)
    assert flow_run.state is not None
    assert flow_run.state.is_completed() or flow_run.state.is_cancelled(), flow_run.state
    return flow_run.state.name


def _sweep_until(done: Any, *, timeout: float, what: str) -> None:
    """Sweep, again and again, until ``done()``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        _sweep()


def _onboarding_flow_runs() -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["onboard-channel"])), limit=200
        )


def _final_onboarding_flow_runs(*, timeout: float) -> list[Any]:
    """The onboarding flow runs once none is still running: a flow run records its onboarding
    ``completed`` a moment before Prefect records the flow run ``Completed``."""
    deadline = time.monotonic() + timeout
    while True:
        flow_runs = _onboarding_flow_runs()
        if all(flow_run.state.is_final() for flow_run in flow_runs):
            return flow_runs
        if time.monotonic() > deadline:
            return flow_runs
        time.sleep(0.5)


def test_fifty_onboardings_on_executors_complete_once_each(on_cluster, sandbox, callback_receiver):
    """50 onboardings (40 found by the sweep, 10 by webhook) complete on two executors, once
    each."""
    history = on_cluster.history_url
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from onboarding.orchestration.webhooks import reconcile_event

    client = {
        PREFECT_API_URL: on_cluster.api_url,
        PREFECT_API_AUTH_STRING: on_cluster.cluster.spec.auth_string,
    }

    async def handoff(event: Any) -> str:
        # The receiver runs in uvicorn's thread, which does not see this test's temporary
        # Prefect settings: point its handoff at the cluster explicitly.
        with temporary_settings(updates=client):
            return await reconcile_event(event)

    app = create_app(engine=engine_for(history), token=SecretStr(TOKEN), handoff=handoff)
    with serve_in_thread(app) as receiver:
        sandbox.set_webhook_url(f"{receiver}/hooks/360dialog/{TOKEN}")
        swept = sandbox.bulk_channels(SWEPT, send_webhook=False)
        hooked = [sandbox.create_channel(send_webhook=True)["id"] for _ in range(HOOKED)]
        channels = swept + hooked
        started = time.monotonic()
        # Let the webhooks start their onboardings before a sweep could find those channels:
        # an executor starts a sweep within a second, and this test is about the webhook path.
        deadline = time.monotonic() + 120
        while {run.channel_id for run in _runs(history)} < set(hooked):
            assert time.monotonic() < deadline, "the webhooks did not start their onboardings"
            time.sleep(0.5)

        _sweep_until(
            lambda: len(_runs(history)) == len(channels),
            timeout=240,
            what="every channel to get an onboarding",
        )
        for channel_id in swept:
            sandbox.set_status(channel_id, "ready", status="ready", send_webhook=False)
        for channel_id in hooked:
            sandbox.set_status(channel_id, "ready", status="ready")
        _sweep_until(
            lambda: all(run.state == "completed" for run in _runs(history)),
            timeout=420,
            what="every onboarding to complete",
        )
        elapsed = time.monotonic() - started

    runs = _runs(history)
    assert sorted(run.channel_id for run in runs) == sorted(channels)
    assert {run.state for run in runs} == {"completed"}
    # A webhook and a sweep race for the hooked channels; either may start them, once.
    assert {run.trigger for run in runs if run.channel_id in hooked} <= {"webhook", "schedule"}

    flow_runs = _final_onboarding_flow_runs(timeout=60)
    per_channel = Counter(flow_run.parameters["channel_id"] for flow_run in flow_runs)
    assert per_channel == Counter(channels), "a channel got more or fewer than one flow run"
    unfinished = [(flow_run.name, flow_run.state.name) for flow_run in flow_runs]
    assert all(flow_run.state.is_completed() for flow_run in flow_runs), unfinished
    names = Counter(flow_run.name for flow_run in flow_runs)
    assert len(names) == len(channels)
    assert set(names.values()) == {1}

    assert [sandbox.api_key_count(cid) for cid in channels] == [1] * len(channels)
    assert len(callback_receiver.calls) == len(channels)

    inbox = _inbox(history)
    stored = {(e.event_type, e.channel_id) for e in inbox} | {
        (e.event_type, e.client_id) for e in inbox
    }
    delivered = {
        (d["event"], d["object_id"]) for d in sandbox.webhooks() if d["status_code"] == 202
    }
    assert delivered <= stored, "a webhook the receiver answered is missing from the inbox"
    assert {event.outcome for event in inbox} <= {"handled", "ignored"}
    created = {event.channel_id for event in inbox if event.event_type == "channel_created"}
    assert created == set(hooked)
    print(f"\n{len(channels)} onboardings on 2 executors / 2 API processes: {elapsed:.0f}s")


def test_cluster_api_refuses_requests_without_the_auth_string(scaled):
    """Every API process of the scaled-out setup answers 401 without credentials, 200 with."""
    headers = auth_headers(scaled.cluster.spec.auth_string)
    for api in scaled.cluster.spec.api_urls:
        assert httpx.get(f"{api}/admin/version", timeout=10).status_code == 401
        assert httpx.get(f"{api}/admin/version", headers=headers, timeout=10).status_code == 200


def test_cluster_refuses_to_bind_every_interface():
    """A cluster spec bound to 0.0.0.0 is refused: loopback or a private interface only."""
    with pytest.raises(ValueError, match="every interface"):
        ClusterSpec(prefect_db_url="postgresql+asyncpg://u@db/p", host="0.0.0.0")
