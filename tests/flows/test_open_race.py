"""Opening an onboarding races whatever moves it on while its flow run is being created.

The history run is written first, its flow run created next (a request to Prefect), and the
flow run recorded last. In between, a webhook or a sweep may see the run (and re-create its
flow run), or the onboarding may finish. Recording is a compare-and-set: what happened in
between stands, and a flow run that was not recorded is cancelled, never left parked.
"""

from __future__ import annotations

import asyncio
import secrets

from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

from onboarding.lifecycle import Seen
from onboarding.orchestration.flow_runs import is_parked, run_name
from onboarding.orchestration.outcomes import settle_onboarding
from onboarding.orchestration.reconciler import Signal, reconcile
from onboarding.runtime import history_engine
from onboarding.store import OnboardingRun, RunState, find_runs, get_active_run, session_scope

CLIENT = "cl-race"


def _history(channel_id: str) -> list[OnboardingRun]:
    with session_scope(history_engine()) as session:
        return find_runs(session, channel_id=channel_id)


async def _flow_runs(channel_id: str) -> list:
    async with get_client() as client:
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(any_=[run_name(channel_id, CLIENT)])
            )
        )


async def _once_opened(channel_id: str) -> OnboardingRun:
    """The channel's history run, as soon as it exists (while its flow run is being created)."""
    while True:
        with session_scope(history_engine()) as session:
            run = get_active_run(session, channel_id=channel_id)
        if run is not None:
            return run
        await asyncio.sleep(0.002)


def _signup(channel_id: str) -> list[Signal]:
    return [Signal(channel_id, CLIENT, Seen("setting_up", source="signup"))]


async def test_an_onboarding_that_finishes_while_its_flow_run_is_created_stays_finished(
    deployed,
):
    """Finished in between: the history keeps ``completed`` and the new flow run is cancelled."""
    channel_id = f"ch-{secrets.token_hex(4)}"

    async def finish_once_opened() -> None:
        run = await _once_opened(channel_id)
        settle_onboarding(run_id=run.id, state=RunState.COMPLETED)

    await asyncio.gather(reconcile(_signup(channel_id), trigger="signup"), finish_once_opened())

    [run] = _history(channel_id)
    assert run.state == RunState.COMPLETED
    [flow_run] = await _flow_runs(channel_id)
    assert not is_parked(flow_run)
    assert flow_run.state.type.value in ("CANCELLING", "CANCELLED"), flow_run.state


async def test_a_sweep_that_sees_the_run_before_its_flow_run_leaves_one_parked_run(deployed):
    """A sweep in between takes the run for one whose flow run was lost and re-creates it: both
    wakers end with the same flow run recorded, parked, and no other left behind."""
    channel_id = f"ch-{secrets.token_hex(4)}"

    async def sweep_once_opened() -> None:
        await _once_opened(channel_id)
        await reconcile(
            [Signal(channel_id, None, Seen("setting_up", source="sweep"))], trigger="sweep"
        )

    await asyncio.gather(reconcile(_signup(channel_id), trigger="signup"), sweep_once_opened())

    [run] = _history(channel_id)
    assert run.state == RunState.WAITING
    parked = [flow_run for flow_run in await _flow_runs(channel_id) if is_parked(flow_run)]
    assert [str(flow_run.id) for flow_run in parked] == [run.flow_run_id]
