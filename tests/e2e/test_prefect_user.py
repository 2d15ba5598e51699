"""What a Prefect user does beside the product: a standard worker, an event, a chained trigger."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any
from uuid import uuid4

import pytest
from prefect import flow, get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterTags,
)
from prefect.client.schemas.sorting import FlowRunSort
from prefect.events import emit_event
from prefect.events.filters import EventFilter, EventResourceFilter
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

from onboarding.orchestration.flow_runs import is_parked
from tests.e2e.helpers import history_runs, sweep_now, wait_for

pytestmark = pytest.mark.slow


def _stop_group(process: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """SIGTERM ``process``'s group; SIGKILL it if still there after ``grace`` seconds.

    Prefect's process worker may still be running a flow (a sweep it picked up) when told to
    stop; left behind, it would take the next test's runs.
    """
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # its flow-run processes, if any outlived it
        os.killpg(process.pid, signal.SIGKILL)


def _flow_runs_of(channel_id: str) -> list[Any]:
    """The onboarding flow runs of ``channel_id`` (their names end with it)."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["onboarding"])),
            limit=200,
        )
    return [run for run in runs if run.name.endswith(f"-{channel_id}")]


def test_a_standard_process_worker_on_the_pool_leaves_waiting_onboardings_alone(
    deployed, sandbox, callback_receiver, tmp_path
):
    """`prefect worker start --type process` on our pool while three channels wait: their runs
    stay parked, one flow run each, across many of its polls; woken, each completes once."""
    channels = [sandbox.create_channel(send_webhook=False)["id"] for _ in range(3)]
    sweep_now()
    log = (tmp_path / "process-worker.log").open("wb")
    name = f"process-{uuid4().hex[:6]}"
    command = ["worker", "start", "--pool", "onboarding", "--type", "process", "--name", name]
    worker = subprocess.Popen(
        [sys.executable, "-m", "prefect", *command],
        env={**os.environ, **deployed.env, "PREFECT_WORKER_QUERY_SECONDS": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its flow-run processes go with it when it is stopped
    )
    try:
        wait_for(
            lambda: b"started" in (tmp_path / "process-worker.log").read_bytes(),
            timeout=90,
            what="the process worker to start",
        )
        watched_until = time.monotonic() + 15  # fifteen of its polls
        while time.monotonic() < watched_until:
            for channel_id in channels:
                [flow_run] = _flow_runs_of(channel_id)
                assert is_parked(flow_run), (channel_id, flow_run.state)
            time.sleep(1)
        assert worker.poll() is None, "the process worker stopped"

        for channel_id in channels:
            sandbox.set_status(channel_id, "ready", status="ready")  # webhooks wake them
        try:
            for channel_id in channels:
                wait_for(
                    lambda channel_id=channel_id: (
                        history_runs(deployed.db_url, channel_id)[0].state == "completed"
                    ),
                    timeout=180,
                    what=f"{channel_id} to complete",
                )
        except AssertionError:
            print((tmp_path / "process-worker.log").read_text()[-6000:])
            print([(r.name, r.state) for c in channels for r in _flow_runs_of(c)])
            raise
    finally:
        _stop_group(worker)
        log.close()
    for channel_id in channels:
        assert sandbox.api_key_count(channel_id) == 1
        assert len(_flow_runs_of(channel_id)) == 1


def _requested_ready_channel(sandbox: Any) -> dict[str, Any]:
    """A ready channel no webhook announced, asked for by an `onboarding.channel.requested`."""
    channel = sandbox.create_channel(
        send_webhook=False, availability_status="ready", status="ready"
    )
    emit_event(
        event="onboarding.channel.requested",
        resource={"prefect.resource.id": f"d360.channel.{channel['id']}"},
        payload={"channel_id": channel["id"], "client_id": channel["client_id"]},
    )
    return channel


def test_the_requested_event_starts_an_onboarding(deployed, sandbox, callback_receiver):
    """prefect.yaml's trigger: an `onboarding.channel.requested` event starts one onboarding."""
    channel = _requested_ready_channel(sandbox)
    wait_for(
        lambda: (
            (runs := history_runs(deployed.db_url, channel["id"])) and runs[0].state == "completed"
        ),
        timeout=180,
        what="the requested onboarding to complete",
    )
    [run] = history_runs(deployed.db_url, channel["id"])
    assert run.trigger == "manual"
    assert sandbox.api_key_count(channel["id"]) == 1

    # The run names its pool; the worker writes no labels update (on a SQLite server it mostly
    # failed and was retried, a third of a run's Prefect API writes: BENCHMARKS.md).
    [flow_run] = _flow_runs_with(channel["id"])
    assert flow_run.work_pool_name == "onboarding"
    assert "prefect.worker.name" not in flow_run.labels


def _events_of(flow_run_id: Any) -> list[str]:
    """The names of the events Prefect stored about one flow run."""
    resource = EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"])
    with get_client(sync_client=True) as client:
        return [
            event.event
            for event in client.read_events(EventFilter(resource=resource), limit=50).events
        ]


def test_the_worker_runs_onboardings_without_heartbeat_events(deployed, sandbox, callback_receiver):
    """Prefect's flow-run heartbeat (a thread and an event per run, read by nothing here) is off
    in the worker unless PREFECT_FLOWS_HEARTBEAT_FREQUENCY is set."""
    channel = _requested_ready_channel(sandbox)
    wait_for(
        lambda: (runs := _flow_runs_with(channel["id"])) and runs[0].state.is_completed(),
        timeout=180,
        what="the requested onboarding's flow run to complete",
    )
    [flow_run] = _flow_runs_with(channel["id"])
    events = wait_for(
        lambda: (
            [] if "prefect.flow-run.Completed" not in (seen := _events_of(flow_run.id)) else seen
        ),
        timeout=60,
        what="the flow run's Completed event to be stored",
    )
    assert "prefect.flow-run.Running" in events
    assert "prefect.flow-run.heartbeat" not in events


def _flow_runs_with(channel_id: str) -> list[Any]:
    """The flow runs whose parameters name ``channel_id``."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=100)
    return [run for run in runs if run.parameters.get("channel_id") == channel_id]


@flow(name="after-onboarding")
def after_onboarding(channel_id: str) -> str:
    """A partner's own follow-up deployment (here never executed: no worker serves it)."""
    return channel_id


async def test_a_partner_deployment_chains_on_the_completed_event(deployed, sandbox):
    """A deployment with a trigger on `onboarding.channel.completed` gets a run per completed
    onboarding, with the channel id from the event."""
    trigger = DeploymentEventTrigger(
        expect={"onboarding.channel.completed"},
        match={"prefect.resource.id": "d360.channel.*"},
        parameters={"channel_id": "{{ event.payload.channel_id }}"},
    )
    deployment = await after_onboarding.ato_deployment(name="chained", triggers=[trigger])
    await deployment.aapply()
    channel = sandbox.create_channel(settle_after=1, settle_to="ready")

    async def chained_runs() -> list[Any]:
        async with get_client() as client:
            return await client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["chained"]))
            )

    deadline = time.monotonic() + 180
    while not [r for r in await chained_runs() if r.parameters["channel_id"] == channel["id"]]:
        assert time.monotonic() < deadline, "no run of the chained deployment"
        await _pause()
    [run] = history_runs(deployed.db_url, channel["id"])
    assert run.state == "completed"


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.5)
