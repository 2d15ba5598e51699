"""The watcher re-drives onboardings whose process died, and leaves live or parked ones alone."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from prefect import get_client
from prefect.states import Crashed, Pending, Running
from sqlmodel import update

from onboarding.orchestration.flow_runs import awaiting_state, is_parked, revive_stalled_runs
from onboarding.runtime import history_engine
from onboarding.store import OnboardingRun, RunState, session_scope, settle_run, start_or_get_run
from tasks.sweep import close_orphaned, revive_stalled

ON_POSTGRESQL = pytest.mark.parametrize("test_database", ["postgresql"], indirect=True)


async def _flow_run_in(state: object, tags: list[str] | None = None) -> str:
    """A run of a stand-in deployment in no work pool: no worker ever executes it, and Prefect
    reschedules it as it does any deployment's run."""
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("stand-in-onboarding")
        deployment_id = await client.create_deployment(flow_id=flow_id, name="stand-in")
        flow_run = await client.create_flow_run_from_deployment(
            deployment_id, state=state, tags=tags
        )
    return str(flow_run.id)


async def _state_of(flow_run_id: str) -> tuple[str, str]:
    async with get_client() as client:
        flow_run = await client.read_flow_run(flow_run_id)
    return flow_run.state.type.value, flow_run.state.name


async def test_stuck_running_and_crashed_runs_are_revived_parked_and_fresh_are_not(prefect_api):
    """Running or Crashed since before the cut-off: made due again; parked or newer: untouched."""
    stuck = await _flow_run_in(Running())
    crashed = await _flow_run_in(Crashed())
    parked = await _flow_run_in(awaiting_state(datetime.now(UTC) + timedelta(hours=1), "wait"))
    cutoff = datetime.now(UTC)
    fresh = await _flow_run_in(Running())  # went Running after the cut-off

    revived = await revive_stalled_runs([stuck, crashed, parked, fresh], older_than=cutoff)

    assert sorted(revived) == sorted([stuck, crashed])
    assert await _state_of(stuck) == ("SCHEDULED", "Scheduled")
    assert await _state_of(crashed) == ("SCHEDULED", "Scheduled")
    async with get_client() as client:
        assert is_parked(await client.read_flow_run(parked))
    assert (await _state_of(fresh))[0] == "RUNNING"


async def test_runs_that_never_started_are_revived_without_waiting_for_the_lease(prefect_api):
    """A wake or a claim cut off half-way leaves a run Pending (or Crashed) that never started:
    made due again once past the short grace, though its history is not stale; a Pending run
    within the grace (a claim in progress) is left alone."""
    half_woken = await _flow_run_in(Pending())
    failed_submission = await _flow_run_in(Pending())
    async with get_client() as client:  # as a worker reports a run it could not submit
        await client.set_flow_run_state(failed_submission, Crashed(), force=True)
    grace_ends = datetime.now(UTC)
    claiming = await _flow_run_in(Pending())

    revived = await revive_stalled_runs(
        [half_woken, failed_submission, claiming],
        older_than=grace_ends - timedelta(hours=1),
        stale=[],
        unstarted_before=grace_ends,
    )

    assert sorted(revived) == sorted([half_woken, failed_submission])
    assert (await _state_of(claiming))[0] == "PENDING"


@ON_POSTGRESQL
async def test_sweep_revives_only_onboardings_without_progress_for_the_lease(
    onboarding_env, monkeypatch
):
    """An active history run untouched for the owner lease, its flow run Running: revived."""
    monkeypatch.setenv("ONBOARDING_OWNER_LEASE", "1")
    dead = await _flow_run_in(Running())
    with session_scope(history_engine()) as session:
        run, _ = start_or_get_run(
            session,
            partner_id=onboarding_env["D360_PARTNER_ID"],
            channel_id="dead-channel",
            client_id="c1",
            trigger="schedule",
            deadline_seconds=3600,
            flow_run_id=dead,
        )
    _touch(run.id, datetime.now(UTC) + timedelta(hours=1))  # its history keeps moving
    assert await revive_stalled.fn() == []

    _touch(run.id, datetime.now(UTC) - timedelta(hours=1))  # no progress for an hour
    deadline = time.monotonic() + 30
    while not (revived := await revive_stalled.fn()):  # once its Running state is 1 s old
        assert time.monotonic() < deadline, "the dead onboarding was never revived"
        await asyncio.sleep(0.2)
    assert revived == ["dead-channel"]
    assert await _state_of(dead) == ("SCHEDULED", "Scheduled")
    assert await revive_stalled.fn() == []  # now due, not stuck: left to the runner


@ON_POSTGRESQL
async def test_sweep_closes_runs_whose_process_died_after_the_onboarding_finished(
    onboarding_env, monkeypatch
):
    """History finished, flow run still Running or marked Crashed (Prefect's zombie automation):
    Completed (or Failed) with why; others kept."""
    monkeypatch.setenv("ONBOARDING_OWNER_LEASE", "1")
    tags = ["onboarding", f"partner:{onboarding_env['D360_PARTNER_ID']}"]
    done = await _flow_run_in(Running(), tags)
    failed = await _flow_run_in(Running(), tags)
    crashed_done = await _flow_run_in(Crashed(), tags)  # killed right after its history closed
    live = await _flow_run_in(Running(), tags)  # its onboarding is still going
    crashed_live = await _flow_run_in(Crashed(), tags)  # left to revive_stalled
    untagged = await _flow_run_in(Running())  # not an onboarding of this partner
    with session_scope(history_engine()) as session:
        for channel_id, flow_run_id, final in [
            ("done-channel", done, RunState.COMPLETED),
            ("failed-channel", failed, RunState.FAILED),
            ("crashed-done-channel", crashed_done, RunState.COMPLETED),
            ("live-channel", live, None),
            ("crashed-live-channel", crashed_live, None),
            ("other-channel", untagged, RunState.COMPLETED),
        ]:
            run, _ = start_or_get_run(
                session,
                partner_id=onboarding_env["D360_PARTNER_ID"],
                channel_id=channel_id,
                client_id="c1",
                trigger="schedule",
                deadline_seconds=3600,
                flow_run_id=flow_run_id,
            )
            if final:
                settle_run(session, run_id=run.id, state=final, availability_status="ready")

    # Each run is closed once its Running state is 1 s old; on a loaded machine the two may
    # come of age in different sweeps, so count across sweeps.
    deadline = time.monotonic() + 30
    closed: list[str] = []
    while len(closed := closed + await close_orphaned.fn()) < 3:
        assert time.monotonic() < deadline, f"only {closed} were closed"
        await asyncio.sleep(0.2)
    assert sorted(closed) == ["crashed-done-channel", "done-channel", "failed-channel"]
    assert await _state_of(done) == ("COMPLETED", "Completed")
    assert await _state_of(failed) == ("FAILED", "Failed")
    assert await _state_of(crashed_done) == ("COMPLETED", "Completed")
    assert (await _state_of(live))[0] == "RUNNING"
    assert (await _state_of(crashed_live))[0] == "CRASHED"
    assert (await _state_of(untagged))[0] == "RUNNING"
    assert await close_orphaned.fn() == []


def _touch(run_id: int | None, when: datetime) -> None:
    with session_scope(history_engine()) as session:
        session.exec(
            update(OnboardingRun).where(OnboardingRun.id == run_id).values(updated_at=when)
        )
