"""The Prefect adapter: parked runs keyed to their history run, never attached to another."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from prefect import get_client

from flows.onboard import onboard_channel
from onboarding.orchestration.flow_runs import (
    AWAITING_CHANNEL,
    ForeignFlowRun,
    ParkedRun,
    create_parked_runs,
    forget_deployment,
    onboarding_deployment_id,
)


@pytest.fixture
async def deployment_id(prefect_api):
    """The ``onboard-channel`` deployment registered with the test Prefect API (no runner)."""
    forget_deployment()
    await (await onboard_channel.to_deployment(name="onboard-channel")).apply()
    return await onboarding_deployment_id()


def _run(history_key: str) -> ParkedRun:
    return ParkedRun(
        history_key=history_key,
        attempt=1,
        channel_id=f"ch-{secrets.token_hex(3)}",
        client_id="cl-1",
        partner_id="p-1",
        trigger="webhook",
        until=datetime.now(UTC) + timedelta(hours=1),
    )


async def test_parked_run_is_named_tagged_and_created_once(deployment_id):
    """A parked run carries its name and tags from creation; creating it again returns it."""
    run = _run(f"{secrets.token_hex(4)}-1")
    [first] = await create_parked_runs([run])
    [again] = await create_parked_runs([run])
    assert again == first
    async with get_client() as client:
        flow_run = await client.read_flow_run(first)
    assert flow_run.name == f"onboard-cl-1-{run.channel_id}"
    assert {"onboarding", "partner:p-1", "client:cl-1", run.tag} <= set(flow_run.tags)
    assert flow_run.state.name == AWAITING_CHANNEL


async def test_a_flow_run_of_another_onboarding_is_never_attached(deployment_id):
    """A flow run that holds the key but not the history run's tag is an error naming both."""
    run = _run(f"{secrets.token_hex(4)}-7")
    async with get_client() as client:
        stranger = await client.create_flow_run_from_deployment(
            deployment_id,
            parameters={"channel_id": "someone-else"},
            idempotency_key=f"onboard-{run.history_key}-1",
            tags=["other"],
        )
    with pytest.raises(ForeignFlowRun) as raised:
        await create_parked_runs([run])
    assert str(stranger.id) in str(raised.value)
    assert run.history_key in str(raised.value)
