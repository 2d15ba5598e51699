"""Executors as deployed: racing wakers, two executors on one server, a SIGTERM mid-run.

Every count here is read back from the Prefect API (each flow run's state history) and from the
partner's callback receiver, never from the code under test.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType

from onboarding.lifecycle import Event
from onboarding.orchestration.executor import CLAIMED, HANDED_BACK
from onboarding.orchestration.flow_runs import wake_runs
from onboarding.orchestration.reconciler import Signal, reconcile
from tests.e2e.helpers import history_runs, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]


def _park(deployed: Any, sandbox: Any, count: int) -> dict[str, str]:
    """``count`` new channels in the sandbox, each with a parked onboarding: {channel: flow run}."""
    channels = [sandbox.create_channel(send_webhook=False) for _ in range(count)]
    signals = [Signal(c["id"], c["client_id"], Event("channel_created")) for c in channels]
    asyncio.run(reconcile(signals, trigger="webhook"))
    return {c["id"]: history_runs(deployed.db_url, c["id"])[0].flow_run_id for c in channels}


async def _webhook_wake(channel_id: str) -> list[str]:
    """What a ``channel_ready`` webhook wakes: the channels whose run this call woke."""
    done = await reconcile([Signal(channel_id, None, Event("channel_ready"))], trigger="webhook")
    return done.woken


def _histories(flow_run_ids: list[str]) -> dict[str, list[Any]]:
    """Each flow run's state history, oldest first, from the Prefect API."""
    with get_client(sync_client=True) as client:
        return {run_id: client.read_flow_run_states(run_id) for run_id in flow_run_ids}


def _count(history: list[Any], state_type: StateType, name: str | None = None) -> int:
    return sum(1 for s in history if s.type == state_type and (name is None or s.name == name))


def _all_completed(flow_run_ids: list[str]) -> bool:
    """Whether every one of the flow runs is Completed (one request, not one per run)."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[UUID(run_id) for run_id in flow_run_ids]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED])),
            ),
            limit=200,
        )
    return len(runs) == len(set(flow_run_ids))


def _callbacks_per_channel(callback_receiver: Any) -> Counter[str]:
    return Counter(json.loads(body)["channel_id"] for body, _ in callback_receiver.calls)


def _since_hand_back(history: list[Any]) -> list[Any]:
    """The states after the run was last handed back by a stopping executor (all if never)."""
    backs = [i for i, state in enumerate(history) if state.name == HANDED_BACK]
    return history[backs[-1] + 1 :] if backs else history


def _claimers(history: list[Any]) -> list[str]:
    """The executors that claimed the run and kept it, from the ``Claimed`` states' messages.

    A claim that reached Prefect after the run had finished is let go, and the state it displaced
    put back with a message naming that executor: it is not counted.
    """
    claimed = [s.message.rsplit(" ", 1)[-1] for s in history if s.name == CLAIMED and s.message]
    let_go = {
        s.message.rsplit(" ", 1)[-1].rstrip(")")
        for s in history
        if s.message and "(put back: a late claim by executor " in s.message
    }
    return [owner for owner in claimed if owner not in let_go]


@pytest.fixture
def second_executor(deployed: Any, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Another `python -m deployments.serve` against the same Prefect server and history."""
    log_path = tmp_path / "executor-b.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "deployments.serve", "--grace", "0.5"],
            env={**os.environ, **deployed.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        wait_for(
            lambda: "serving 3 deployment(s)" in log_path.read_text() or process.poll() is not None,
            what="the second executor to start",
        )
        assert process.poll() is None, log_path.read_text()
        yield process
    finally:
        # SIGTERM, as an operator stops it: a run it holds (its start-up sweep, say) is handed
        # back. A SIGKILL would leave that sweep Running, holding the sweep deployment's one
        # concurrency slot until Prefect's lease on it expires (5 minutes).
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def test_served_deployments_show_ready(deployed):
    """The executor's deployments show as Ready in the Prefect UI (it polls as a runner would)."""
    from prefect.client.schemas.objects import DeploymentStatus

    def statuses() -> set[Any]:
        with get_client(sync_client=True) as client:
            return {
                client.read_deployment_by_name(name).status
                for name in ("onboard-channel/onboard-channel", "watch-channels/watch-channels")
            }

    wait_for(lambda: statuses() == {DeploymentStatus.READY}, what="deployments to show Ready")


def test_three_concurrent_wakers_make_one_execution_per_run(
    deployed, sandbox, callback_receiver, monkeypatch
):
    """100 parked runs, each woken at the same moment by a webhook and two sweeps: every run
    executes once (one Running state) and every partner gets one callback."""
    monkeypatch.setenv("ONBOARDING_WAKE_LIMIT", "1000")
    sandbox.set_webhook_url(None)  # this test plays the webhook itself, at the same moment
    parked = _park(deployed, sandbox, 100)
    for channel_id in parked:
        sandbox.set_status(channel_id, "ready", status="ready")

    async def wake_three_ways() -> list[str]:
        ids = list(parked.values())
        results = await asyncio.gather(
            wake_runs(ids),  # a sweep
            wake_runs(list(reversed(ids))),  # a second sweep
            *(_webhook_wake(channel_id) for channel_id in parked),  # the webhooks
        )
        sweeps, webhooks = results[:2], results[2:]
        by_webhook = [parked[channel_id] for woken in webhooks for channel_id in woken]
        return [run_id for woken in sweeps for run_id in woken] + by_webhook

    woken = asyncio.run(wake_three_ways())

    assert sorted(woken) == sorted(parked.values())  # each run woken by exactly one waker
    wait_for(lambda: _all_completed(list(parked.values())), what="all runs", timeout=300)
    histories = _histories(list(parked.values()))
    assert {run_id: _count(h, StateType.RUNNING) for run_id, h in histories.items()} == {
        run_id: 1 for run_id in parked.values()
    }
    assert _callbacks_per_channel(callback_receiver) == Counter(dict.fromkeys(parked, 1))


def test_two_executors_onboard_each_channel_exactly_once(
    deployed, second_executor, sandbox, callback_receiver
):
    """Two executors on one Prefect server share 30 woken runs: each run is claimed and executed
    by exactly one of them, both take part, and every partner gets one callback."""
    sandbox.set_webhook_url(None)  # only this test wakes runs
    parked = _park(deployed, sandbox, 30)
    for channel_id in parked:
        sandbox.set_status(channel_id, "ready", status="ready")

    asyncio.run(wake_runs(list(parked.values())))

    wait_for(lambda: _all_completed(list(parked.values())), what="all runs", timeout=300)
    histories = _histories(list(parked.values()))
    claims = {run_id: _claimers(h) for run_id, h in histories.items()}
    twice = {
        run_id: [(state.name, state.message) for state in histories[run_id]]
        for run_id, claimers in claims.items()
        if len(claimers) != 1
    }
    assert not twice, twice
    assert all(_count(h, StateType.RUNNING) == 1 for h in histories.values())
    assert len({claimers[0] for claimers in claims.values()}) == 2
    assert _callbacks_per_channel(callback_receiver) == Counter(dict.fromkeys(parked, 1))


def test_sigterm_mid_run_hands_runs_back_without_a_crash_alert(
    deployed, second_executor, sandbox, callback_receiver, alert_sink
):
    """SIGTERM to an executor with runs in flight: it exits cleanly, hands them back, the other
    executor completes every run once, nothing is Crashed and no flow_crashed alert is raised."""
    pid = str(second_executor.pid)
    sandbox.set_webhook_url(None)  # only this test wakes runs
    parked = _park(deployed, sandbox, 12)
    for channel_id in parked:
        sandbox.set_status(channel_id, "ready", status="ready")
    sandbox.add_fault("slow", delay=3.0, duration=20.0, method="GET")  # keep runs in flight

    asyncio.run(wake_runs(list(parked.values())))

    def in_flight_at_b() -> list[str]:
        histories = _histories(list(parked.values()))
        return [
            run_id
            for run_id, h in histories.items()
            if any(c.endswith(f":{pid}") for c in _claimers(h)) and h[-1].is_running()
        ]

    taken = wait_for(in_flight_at_b, what="the second executor to run some", timeout=60)
    second_executor.send_signal(signal.SIGTERM)
    assert second_executor.wait(timeout=30) == 0

    wait_for(lambda: _all_completed(list(parked.values())), what="all runs", timeout=300)
    histories = _histories(list(parked.values()))
    assert all(_count(histories[run_id], StateType.SCHEDULED, HANDED_BACK) == 1 for run_id in taken)
    # One execution since each run was last handed back (or ever), and it ended Completed. A claim
    # that arrived late may add a "put back" Completed, never a Running.
    odd = {
        run_id: [(state.name, state.message) for state in h]
        for run_id, h in histories.items()
        if _count(_since_hand_back(h), StateType.RUNNING) != 1 or not h[-1].is_completed()
    }
    assert not odd, odd
    assert not any(_count(h, StateType.CRASHED) for h in histories.values())
    assert "flow_crashed" not in json.dumps(alert_sink.received)
    assert _callbacks_per_channel(callback_receiver) == Counter(dict.fromkeys(parked, 1))
