"""A wake that arrives while the run executes (nothing parked to wake) is not lost.

The run reads its channel, decides to wait, and hands over to a fresh parked flow run. A
``channel_permission_granted`` or ``channel_ready`` webhook that lands in between finds no parked
run; the hand-over sees the written request and wakes its new run at once.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from prefect import flow, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.states import Running

from onboarding.history import Claim, ClaimKind, wake_requests
from onboarding.lifecycle import Event
from onboarding.orchestration.flow_runs import is_parked
from onboarding.orchestration.outcomes import settle_onboarding
from onboarding.orchestration.reconciler import Signal, hand_over, reconcile
from onboarding.runtime import history_engine
from onboarding.store import (
    RunState,
    get_installation,
    get_run,
    session_scope,
    start_runs,
    update_run,
)


@flow(name="stand-in-executing-onboarding")
def _stand_in() -> None:
    """Stands for the flow run that is executing the onboarding (never executed)."""


async def _executing_onboarding() -> Claim:
    """A history run whose flow run is ``Running`` right now, claimed by it."""
    channel_id = f"ch-{secrets.token_hex(4)}"
    async with get_client() as client:
        executing = await client.create_flow_run(_stand_in, state=Running())
    with session_scope(history_engine()) as session:
        installation = get_installation(session)
        [run] = start_runs(
            session,
            partner_id="p-wake",
            channels=[(channel_id, "cl-1")],
            trigger="test",
            deadline_seconds=3600,
        ).values()
        run = update_run(session, run_id=run.id, flow_run_id=str(executing.id), state="permission")
        return Claim.of(ClaimKind.OWN, run, installation.id)


async def _ever_woken(flow_run_id: str) -> bool:
    """Whether the flow run was made due (a worker serving the session's Prefect may already
    have claimed it)."""
    async with get_client() as client:
        flow_run = await client.read_flow_run(flow_run_id)
        states = await client.read_flow_run_states(flow_run_id)
    return not is_parked(flow_run) and any(state.is_pending() for state in states)


async def _parked(flow_run_id: str) -> bool:
    async with get_client() as client:
        return is_parked(await client.read_flow_run(flow_run_id))


def _flow_run_of(claim: Claim) -> str:
    with session_scope(history_engine()) as session:
        return get_run(session, run_id=claim.run_id).flow_run_id


async def test_a_grant_that_lands_while_the_run_executes_wakes_its_hand_over(deployed):
    """The grant arrives after the run's key attempt and before it parks: the parked run that
    takes over is woken at once instead of waiting for its retry time."""
    claim = await _executing_onboarding()
    wakes_seen = wake_requests(claim)  # taken before the run reads its channel

    done = await reconcile(
        [Signal(claim.channel_id, None, Event("channel_permission_granted", data_status="ready"))],
        trigger="webhook",
    )
    assert done.woken == []  # nothing was parked: the executing run cannot be woken

    until = datetime.now(UTC) + timedelta(hours=1)
    await hand_over(claim, until=until, reason="waiting for permission", wakes_seen=wakes_seen)
    assert await _ever_woken(_flow_run_of(claim))


async def test_news_the_run_had_already_seen_leaves_its_hand_over_parked(deployed):
    """A wake asked for before the run read its channel was news the run acted on already."""
    claim = await _executing_onboarding()
    await reconcile(
        [Signal(claim.channel_id, None, Event("channel_permission_granted", data_status="ready"))],
        trigger="webhook",
    )
    wakes_seen = wake_requests(claim)  # the run read its channel after the grant

    until = datetime.now(UTC) + timedelta(hours=1)
    await hand_over(claim, until=until, reason="waiting for permission", wakes_seen=wakes_seen)
    assert await _parked(_flow_run_of(claim))


async def test_an_onboarding_cancelled_during_the_hand_over_is_not_reopened(deployed):
    """A cancel lands while the run hands over: the new parked run is cancelled, not recorded,
    so nothing is left to restart the cancelled onboarding at its retry time."""
    claim = await _executing_onboarding()
    settle_onboarding(run_id=claim.run_id, state=RunState.CANCELLED, reason="cancelled meanwhile")

    until = datetime.now(UTC) + timedelta(hours=1)
    state = await hand_over(claim, until=until, reason="waiting for permission", wakes_seen=0)

    assert "ended meanwhile (cancelled)" in state.message
    with session_scope(history_engine()) as session:
        run = get_run(session, run_id=claim.run_id)
    assert (run.state, run.flow_run_id) == ("cancelled", claim.owner_flow_run_id)
    async with get_client() as client:
        [created] = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[f"history:{claim.history_key}"])
            )
        )
    assert created.state.type.value in ("CANCELLING", "CANCELLED"), created.state
