"""The ``onboard-channel`` deployment deleted and re-created under runs that wait.

Against the real Prefect test API: which runs the watcher counts as lost (``lost_flow_runs``),
and what an executor still holding the deleted deployment's id does (``Executor``).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from prefect import Flow, flow, get_client
from prefect.client.orchestration import PrefectClient
from prefect.exceptions import ObjectNotFound
from prefect.states import Pending, Running, Scheduled

from flows.onboard import onboard_channel
from onboarding.orchestration.executor import CLAIMED, PARKED, WOKEN, Executor
from onboarding.orchestration.flow_runs import (
    ParkedRun,
    create_parked_runs,
    forget_deployment,
    lost_flow_runs,
    onboarding_deployment_id,
)


@flow(name="stand-in-in-process-onboarding")
def _in_process() -> None:
    """Stands for ``onboarding onboard``'s flow run: no deployment (never executed)."""


async def _register() -> dict[UUID, Any]:
    """``onboard-channel`` created or updated by name, as ``deployments.serve.register`` does."""
    deployment = await onboard_channel.ato_deployment(name="onboard-channel", tags=["onboarding"])
    return {await deployment.aapply(): onboard_channel}


@pytest.fixture
async def deployment_id(prefect_api):
    """The ``onboard-channel`` deployment registered; registered again afterwards, whatever the
    test deleted (the session's served executor, if any, serves it too)."""
    forget_deployment()
    [deployment_id] = await _register()
    yield deployment_id
    await _register()
    forget_deployment()


async def _run(client: PrefectClient, deployment_id: UUID, *states: Any) -> str:
    """A parked run of ``deployment_id`` put through ``states`` (forced); its id."""
    flow_run = await client.create_flow_run_from_deployment(
        deployment_id,
        parameters={"channel_id": "never-executed"},
        state=Scheduled(scheduled_time=datetime.now(UTC), name=PARKED),
    )
    for state in states:
        await client.set_flow_run_state(flow_run.id, state, force=True)
    return str(flow_run.id)


def _later() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


async def test_runs_stranded_by_a_deleted_deployment_are_lost_running_ones_are_not(
    deployment_id,
):
    """Deleted and re-created: its parked run (deleted with it), a woken, a ``Claimed`` and a
    ``Revived`` run count as lost, not cancelled by a person; a ``Running`` run of the deleted
    deployment, a ``Running`` run without one, and the waiting runs of the new one do not."""
    assert await onboarding_deployment_id() == deployment_id  # remembered, as by a sweep
    async with get_client() as client:
        parked = await _run(client, deployment_id)
        held = await _run(client, deployment_id, Pending(name=CLAIMED))
        claimed = await _run(client, deployment_id, Pending(name=CLAIMED))
        # Ran once (so the deletion keeps it), then revived for later: no executor takes it now.
        revived = await _run(
            client, deployment_id, Running(), Scheduled(scheduled_time=_later(), name="Revived")
        )
        running = await _run(client, deployment_id, Running())
        in_process = str((await client.create_flow_run(_in_process, state=Running())).id)
        assert await lost_flow_runs([parked, held, claimed, revived, running, in_process]) == {}

        await client.delete_deployment(deployment_id)
        with pytest.raises(ObjectNotFound):
            await client.read_flow_run(UUID(parked))
        assert (await client.read_flow_run(UUID(revived))).state.name == "Revived"
        # Woken only now: no executor could claim it first.
        await client.set_flow_run_state(UUID(held), Pending(name=WOKEN), force=True)
        [current] = await _register()
        assert current != deployment_id
        waiting = await _run(client, current)
        claimed_now = await _run(client, current, Pending(name=CLAIMED))

        lost = await lost_flow_runs(
            [parked, held, claimed, revived, running, in_process, waiting, claimed_now]
        )
        assert await onboarding_deployment_id() == current  # the sweep's cache follows
    assert lost == {parked: False, held: False, claimed: False, revived: False}


async def test_executor_serves_the_recreated_deployment_and_never_claims_stranded_runs(
    deployment_id,
):
    """An executor holding the deleted deployment's id claims none of its stranded runs;
    its upkeep registers the deployment again and serves the new id (one registration)."""
    registered: list[list[str]] = []

    async def register(flows: Collection[Flow[..., Any]]) -> dict[UUID, Any]:
        registered.append([f.name for f in flows])
        return await _register()

    executor = Executor(flows={deployment_id: onboard_channel}, limit=4, register=register)
    async with get_client() as client:
        await executor.upkeep(client)
        assert registered == []  # nothing gone: one read, no registration

        held = await _run(client, deployment_id, Pending(name=CLAIMED))
        await client.delete_deployment(deployment_id)
        await client.set_flow_run_state(UUID(held), Pending(name=WOKEN), force=True)
        assert held not in {str(run.id) for run in await executor.due_runs(client, 50)}

        await executor.keep_deployments(client)
        [current] = executor.flows
        assert current != deployment_id
        assert (await client.read_deployment_by_name("onboard-channel/onboard-channel")).id == (
            current
        )
        assert registered == [["onboard-channel"]]
        await executor.keep_deployments(client)
        assert registered == [["onboard-channel"]]


async def test_parked_runs_are_created_under_the_recreated_deployment(deployment_id):
    """A process that looked the deployment up before it was deleted and re-created (the
    receiver, the executor's sweep) creates its next parked run under the new one."""
    assert await onboarding_deployment_id() == deployment_id  # remembered
    async with get_client() as client:
        await client.delete_deployment(deployment_id)
        [current] = await _register()
        [flow_run_id] = await create_parked_runs([_parked_run()])
        flow_run = await client.read_flow_run(UUID(flow_run_id))
    assert flow_run.deployment_id == current
    assert flow_run.state.name == PARKED
    assert await onboarding_deployment_id() == current


def _parked_run() -> ParkedRun:
    return ParkedRun(
        history_key=f"{secrets.token_hex(4)}-1",
        attempt=1,
        channel_id=f"ch-{secrets.token_hex(3)}",
        client_id="cl-1",
        partner_id="p-1",
        trigger="webhook",
        until=_later(),
    )
