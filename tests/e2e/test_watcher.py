"""The watcher, as deployed: a lost webhook is made up for, a settled channel wakes its run."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import flow_runs_named, history_runs, sweep_now, wait_for

pytestmark = pytest.mark.slow


def test_lost_webhook_is_found_by_the_sweep_and_completes(deployed, sandbox, callback_receiver):
    """A channel whose webhook was lost gets its onboarding from the sweep, parked, then done."""
    channel = sandbox.create_channel(send_webhook=False)
    name = f"onboard-{channel['client_id']}-{channel['id']}"

    sweep_now()
    [run] = history_runs(deployed.db_url, channel["id"])
    assert run.trigger == "schedule"
    assert run.state == "waiting"
    [flow_run] = flow_runs_named(name)
    assert flow_run.state.name == "AwaitingChannel"
    assert {"onboarding", f"client:{channel['client_id']}"} <= set(flow_run.tags)

    sandbox.set_status(channel["id"], "ready", status="ready")
    sweep_now()
    wait_for(
        lambda: history_runs(deployed.db_url, channel["id"])[0].state == "completed",
        what="the onboarding to complete",
    )
    [flow_run] = flow_runs_named(name)
    wait_for(lambda: flow_runs_named(name)[0].state.is_completed(), what="flow run completed")
    assert len(callback_receiver.calls) == 1


def test_deployment_run_parks_itself_then_finishes_when_woken(deployed, sandbox):
    """A deployment run that finds its channel setting_up parks as AwaitingChannel (no process
    held) and finishes once the sweep wakes it."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    channel = sandbox.create_channel(send_webhook=False)
    flow_run = run_deployment(
        "onboard-channel/onboard-channel",
        parameters={"channel_id": channel["id"], "client_id": channel["client_id"]},
        timeout=0,
    )

    def state():
        with get_client(sync_client=True) as client:
            return client.read_flow_run(flow_run.id).state

    wait_for(lambda: state().name == "AwaitingChannel", what="the run to park itself")
    assert "waiting for channel" in state().message
    assert history_runs(deployed.db_url, channel["id"])[0].state == "waiting"
    sandbox.set_status(channel["id"], "ready", status="ready")
    sweep_now()
    wait_for(lambda: state().is_completed(), what="the woken run to complete", timeout=120)
