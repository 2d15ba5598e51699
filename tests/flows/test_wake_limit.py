"""The watcher keeps at most ONBOARDING_WAKE_LIMIT onboardings due or executing at once."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

from prefect import flow, get_client
from prefect.client.schemas.responses import SetStateStatus
from prefect.states import Completed, Running

from onboarding.orchestration.executor import CLAIMED, WOKEN, claim_flow_run
from onboarding.orchestration.flow_runs import (
    AWAITING_CHANNEL,
    awaiting_state,
    wake_runs,
    woken_state,
)
from onboarding.orchestration.reconciler import wake_within_limit


@flow(name="stand-in-onboarding")
def _stand_in() -> None:
    """A flow whose runs stand for onboarding runs (they are never executed)."""


async def _flow_run(state: object, tags: list[str]) -> str:
    async with get_client() as client:
        return str((await client.create_flow_run(_stand_in, state=state, tags=tags)).id)


async def _state_names(flow_run_ids: list[str]) -> list[str]:
    async with get_client() as client:
        return [(await client.read_flow_run(run_id)).state.name for run_id in flow_run_ids]


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
    assert await _state_names(parked) == [WOKEN] * 2 + [AWAITING_CHANNEL] * 3

    assert await wake_within_limit(parked, partner_id=partner) == []  # no room yet

    async with get_client() as client:
        await client.set_flow_run_state(executing, Completed(), force=True)
    assert await wake_within_limit(parked, partner_id=partner) == [parked[2]]
    assert await _state_names(parked) == [WOKEN] * 3 + [AWAITING_CHANNEL] * 2


async def test_wake_runs_skips_runs_that_are_not_parked(prefect_api):
    """Only parked runs are woken; a running one and an unknown id are left alone."""
    until = datetime.now(UTC) + timedelta(hours=1)
    parked = await _flow_run(awaiting_state(until, "wait"), ["stand-in"])
    running = await _flow_run(Running(), ["stand-in"])

    woken = await wake_runs([running, parked, "not-a-uuid"])

    assert woken == [parked]
    assert await _state_names([parked, running]) == [WOKEN, "Running"]


async def test_parked_run_is_listed_at_its_creation_time_saying_what_it_waits_for(prefect_api):
    """A parked run's expected start is its creation time (inside the UI's default past-7-days
    Runs view, not at its deadline); its message says what it waits for, since when, until when."""
    before = datetime.now(UTC)
    until = before + timedelta(days=30)
    run_id = await _flow_run(awaiting_state(until, "waiting for channel ch-1"), ["stand-in"])

    async with get_client() as client:
        flow_run = await client.read_flow_run(run_id)

    assert before - timedelta(seconds=5) <= flow_run.expected_start_time <= datetime.now(UTC)
    assert flow_run.state.name == AWAITING_CHANNEL
    assert flow_run.state.message.startswith("waiting for channel ch-1 since ")
    assert f"deadline {until:%Y-%m-%d %H:%M} UTC" in flow_run.state.message


async def test_concurrent_wakers_of_one_run_only_one_wins(prefect_api):
    """Three wakers racing for the same parked run: exactly one is told it woke it, and a wake
    after the run was claimed is refused (the run stays claimed)."""
    until = datetime.now(UTC) + timedelta(hours=1)
    run_id = await _flow_run(awaiting_state(until, "wait"), ["stand-in"])

    results = await asyncio.gather(*(wake_runs([run_id]) for _ in range(3)))

    assert sorted(len(woken) for woken in results) == [0, 0, 1]
    async with get_client() as client:
        assert await claim_flow_run(client, await client.read_flow_run(run_id), owner="test")
        result = await client.set_flow_run_state(run_id, woken_state(), force=False)
        assert result.status != SetStateStatus.ACCEPT
        assert (await client.read_flow_run(run_id)).state.name == CLAIMED


async def test_a_late_claim_never_takes_a_run_another_executor_finished(prefect_api):
    """A claim that reaches Prefect after another executor claimed, ran and finished the run is
    refused and the run stays as it ended; one for a run made due again after it ran is kept."""
    until = datetime.now(UTC) + timedelta(hours=1)
    finished_id = await _flow_run(awaiting_state(until, "wait"), ["stand-in"])
    again_id = await _flow_run(awaiting_state(until, "wait"), ["stand-in"])
    await wake_runs([finished_id, again_id])
    async with get_client() as client:
        seen = {run_id: await client.read_flow_run(run_id) for run_id in (finished_id, again_id)}
        for run_id in (finished_id, again_id):  # the other executor wins and runs each one
            assert await claim_flow_run(client, seen[run_id], owner="first")
            await client.set_flow_run_state(run_id, Running(), force=False)
            await client.set_flow_run_state(run_id, Completed(message="done"), force=False)
        await client.set_flow_run_state(again_id, awaiting_state(until, "wait"), force=True)
        await wake_runs([again_id])

        # read_at=None: as if the claim took arbitrarily long to arrive
        assert not await claim_flow_run(client, seen[finished_id], owner="late")
        assert await claim_flow_run(client, seen[again_id], owner="late")

        finished = await client.read_flow_run(finished_id)
        assert finished.state.type.value == "COMPLETED"
        assert finished.state.message == "done (put back: a late claim by executor late)"
        assert (await client.read_flow_run(again_id)).state.name == CLAIMED
