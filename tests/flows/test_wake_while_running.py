"""A wake that arrives while the run executes (nothing parked to wake) is not lost.

The run reads its channel, decides to wait, and hands over to a fresh parked flow run. A
``channel_permission_granted`` or ``channel_ready`` webhook that lands in between finds no parked
run; the hand-over sees the written request and wakes its new run at once.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

from prefect import flow, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.states import Running

from onboarding.history import Claim, ClaimKind, wake_requests
from onboarding.lifecycle import Event, FlowRunGone
from onboarding.orchestration.flow_runs import is_parked
from onboarding.orchestration.outcomes import settle_onboarding
from onboarding.orchestration.reconciler import Signal, hand_over, reconcile
from onboarding.runtime import history_engine
from onboarding.store import (
    RunState,
    attach_flow_run,
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


async def _flow_runs_of(claim: Claim) -> list:
    async with get_client() as client:
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[f"history:{claim.history_key}"])
            )
        )


async def test_a_cancel_racing_a_hand_over_leaves_nothing_parked(deployed):
    """360dialog cancels the channel while its run hands over: whichever lands first, the
    onboarding ends cancelled and no parked flow run is left to start it again."""
    for _ in range(3):  # the two race differently from one round to the next
        claim = await _executing_onboarding()
        cancel = Signal(claim.channel_id, None, Event("channel_cancelled"))
        until = datetime.now(UTC) + timedelta(hours=1)
        await asyncio.gather(
            hand_over(claim, until=until, reason="waiting for permission", wakes_seen=0),
            reconcile([cancel], trigger="webhook"),
        )
        with session_scope(history_engine()) as session:
            assert get_run(session, run_id=claim.run_id).state == RunState.CANCELLED
        created = await _flow_runs_of(claim)
        assert [run for run in created if is_parked(run)] == [], [r.state for r in created]


def test_ending_an_onboarding_names_the_flow_run_it_ended_with(deployed):
    """A canceller that read the onboarding before a hand-over recorded its new flow run still
    learns the new one from the ending, and cancels that one (not the old, finished one)."""
    run_id = asyncio.run(_executing_onboarding()).run_id
    with session_scope(history_engine()) as session:
        old = get_run(session, run_id=run_id).flow_run_id
        assert attach_flow_run(
            session, run_id=run_id, flow_run_id="handed-over-to", replacing=old, due_now=False
        )
    ended = settle_onboarding(run_id=run_id, state=RunState.CANCELLED, reason="cancelled")
    assert (ended.state, ended.flow_run_id) == (RunState.CANCELLED, "handed-over-to")


async def test_news_of_a_flow_run_the_onboarding_has_left_changes_nothing(deployed):
    """A sweep read the onboarding's flow run, found it finished (it had just handed over) and
    reports it gone: the onboarding is in its new flow run's hands, so nothing is re-created or
    cancelled. News of the flow run it still has is acted on."""
    claim = await _executing_onboarding()
    handed_over = await hand_over(
        claim, until=datetime.now(UTC) + timedelta(hours=1), reason="waiting", wakes_seen=0
    )
    assert "waiting continues in flow run" in handed_over.message
    parked = _flow_run_of(claim)

    for gone in (
        FlowRunGone(False, claim.owner_flow_run_id),
        FlowRunGone(True, claim.owner_flow_run_id),
    ):
        done = await reconcile([Signal(claim.channel_id, None, gone)], trigger="schedule")
        assert (done.reopened, done.cancelled) == ([], [])
    assert _flow_run_of(claim) == parked
    assert await _parked(parked)

    done = await reconcile(
        [Signal(claim.channel_id, None, FlowRunGone(False, parked))], trigger="schedule"
    )
    assert done.reopened == [claim.channel_id]
    assert _flow_run_of(claim) != parked
