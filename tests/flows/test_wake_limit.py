"""The watcher keeps at most ONBOARDING_WAKE_LIMIT onboardings due or executing at once."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

from prefect import flow, get_client
from prefect.client.schemas.responses import SetStateStatus
from prefect.states import Completed, Pending, Running

from onboarding.orchestration.flow_runs import (
    awaiting_state,
    is_parked,
    wake_runs,
)
from onboarding.orchestration.reconciler import wake_within_limit


@flow(name="stand-in-onboarding")
def _stand_in() -> None:
    """A flow whose runs stand for onboarding runs (they are never executed)."""


async def _flow_run(state: object, tags: list[str]) -> str:
    async with get_client() as client:
        return str((await client.create_flow_run(_stand_in, state=state, tags=tags)).id)


async def _state_names(flow_run_ids: list[str]) -> list[str]:
    """Each run as a worker sees it: "parked" (not yet due), "due" (Scheduled now) or its state."""
    names = []
    async with get_client() as client:
        for run_id in flow_run_ids:
            flow_run = await client.read_flow_run(run_id)
            if is_parked(flow_run):
                names.append("parked")
            elif flow_run.state.is_scheduled():
                names.append("due")
            else:
                names.append(flow_run.state.name)
    return names


async def test_wakes_only_up_to_the_limit_counting_runs_already_executing(
    onboarding_env, monkeypatch
):
    """Limit 3 with one run executing: the first two parked runs wake, the rest stay parked
    until that run finishes."""
    partner = f"wake-{secrets.token_hex(4)}"  # runs of other tests do not count against us
    monkeypatch.setenv("D360_PARTNER_ID", partner)
    monkeypatch.setenv("ONBOARDING_WAKE_LIMIT", "3")
    tags = ["onboarding", f"partner:{partner}"]
    until = datetime.now(UTC) + timedelta(hours=1)
    executing = await _flow_run(Running(), tags)
    parked = [await _flow_run(awaiting_state(until, "wait"), tags) for _ in range(5)]

    first = await wake_within_limit(parked, partner_id=partner)
    assert set(first) == set(parked[:2])
    assert await _state_names(parked) == ["due"] * 2 + ["parked"] * 3

    assert await wake_within_limit(parked, partner_id=partner) == []  # no room yet

    async with get_client() as client:
        await client.set_flow_run_state(executing, Completed(), force=True)
    assert await wake_within_limit(parked, partner_id=partner) == [parked[2]]
    assert await _state_names(parked) == ["due"] * 3 + ["parked"] * 2


async def test_wake_runs_skips_runs_that_are_not_parked(prefect_api):
    """Only parked runs are woken; a running one and an unknown id are left alone."""
    until = datetime.now(UTC) + timedelta(hours=1)
    parked = await _flow_run(awaiting_state(until, "wait"), ["stand-in"])
    running = await _flow_run(Running(), ["stand-in"])

    woken = await wake_runs([running, parked, "not-a-uuid"])

    assert woken == [parked]
    assert await _state_names([parked, running]) == ["due", "Running"]


async def test_parked_run_is_scheduled_at_its_deadline_saying_what_it_waits_for(prefect_api):
    """A parked run is ``Scheduled`` at the time it waits until, which every Prefect component
    treats as not yet due; its message says what it waits for, since and until when."""
    until = datetime.now(UTC) + timedelta(days=30)
    run_id = await _flow_run(awaiting_state(until, "waiting for channel ch-1"), ["stand-in"])

    async with get_client() as client:
        flow_run = await client.read_flow_run(run_id)
        due = await client.get_scheduled_flow_runs_for_deployments(
            [], scheduled_before=datetime.now(UTC)
        )

    assert abs((flow_run.expected_start_time - until).total_seconds()) < 1
    assert is_parked(flow_run)
    assert run_id not in {str(run.id) for run in due}
    assert flow_run.state.name == "Scheduled"  # Prefect's own: the UI's Upcoming runs list it
    assert flow_run.state.message.startswith("waiting for channel ch-1 since ")
    assert f"until {until:%Y-%m-%d %H:%M} UTC" in flow_run.state.message


async def test_concurrent_wakers_make_the_run_due_and_none_wakes_a_claimed_run(prefect_api):
    """Three wakers racing for the same parked run make it due, and a wake
    after a worker claimed the run (Prefect's standard Pending) is refused: it stays claimed."""
    until = datetime.now(UTC) + timedelta(hours=1)
    run_id = await _flow_run(awaiting_state(until, "wait"), ["stand-in"])

    results = await asyncio.gather(*(wake_runs([run_id]) for _ in range(3)))

    # A waker whose Pending lands after the winner's Scheduled also reports the wake (under
    # load, both latecomers can); the run is due once either way, and a worker's claim (below)
    # decides the one execution.
    assert sum(len(woken) for woken in results) >= 1
    async with get_client() as client:
        claim = await client.set_flow_run_state(run_id, Pending(), force=False)
        assert claim.status == SetStateStatus.ACCEPT
        await client.set_flow_run_state(run_id, awaiting_state(until, "wait"), force=True)
        await client.set_flow_run_state(run_id, Pending(), force=False)  # claimed again
    assert await wake_runs([run_id]) == []
    assert await _state_names([run_id]) == ["Pending"]
