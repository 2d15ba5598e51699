"""The watcher, as deployed: a lost webhook is made up for, a settled channel wakes its run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from onboarding.orchestration.flow_runs import is_parked
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
    assert is_parked(flow_run)
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


def test_deployment_run_hands_over_to_a_parked_run_then_finishes_when_woken(deployed, sandbox):
    """A deployment run that finds its channel setting_up ends, handing the wait to a new
    parked run (Scheduled ahead, no process held) that finishes once the sweep wakes it."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    channel = sandbox.create_channel(send_webhook=False)
    flow_run = run_deployment(
        "onboard-channel/onboard-channel",
        parameters={"channel_id": channel["id"], "client_id": channel["client_id"]},
        timeout=0,
    )

    def state(flow_run_id):
        with get_client(sync_client=True) as client:
            return client.read_flow_run(flow_run_id).state

    wait_for(lambda: state(flow_run.id).is_completed(), what="the first run to hand over")
    [run] = history_runs(deployed.db_url, channel["id"])
    assert run.state == "waiting"
    assert run.flow_run_id in state(flow_run.id).message
    parked = state(run.flow_run_id)
    assert parked.is_scheduled()
    assert parked.state_details.scheduled_time > datetime.now(UTC)
    assert "still setting up" in parked.message
    sandbox.set_status(channel["id"], "ready", status="ready")
    sweep_now()
    wait_for(
        lambda: history_runs(deployed.db_url, channel["id"])[0].state == "completed",
        what="the woken run to complete",
        timeout=120,
    )
    assert state(run.flow_run_id).is_completed()
