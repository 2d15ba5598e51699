"""The Prefect adapter: parked runs keyed to their history run, never attached to another."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
import pytest
from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from onboarding.orchestration.flow_runs import (
    BULK_ATTEMPTS,
    ForeignFlowRun,
    ParkedRun,
    create_parked_runs,
    forget_deployment,
    is_parked,
    onboarding_deployment_id,
)
from tests.fixtures.served import delete_waiting_onboardings


@pytest.fixture
async def deployment_id(prefect_deployments):
    """The ``onboard-channel`` deployment registered from prefect.yaml; the runs parked here are
    deleted afterwards (the session worker would run them when their time came)."""
    forget_deployment()
    yield await onboarding_deployment_id()
    await asyncio.to_thread(delete_waiting_onboardings)


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
    assert is_parked(flow_run)


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


async def test_many_runs_are_created_in_bulk_and_the_ones_a_bulk_request_refused_on_their_own(
    deployment_id, monkeypatch
):
    """250 runs: three bulk requests, in order; runs a bulk request reports as not created (what
    SQLite's "database is locked" looks like; Prefect cannot be made to do it on cue, hence the
    stand-in) are asked for again in bulk, then alone. Every run once, each with its own tag."""
    runs = [_run(f"{secrets.token_hex(4)}-{i}") for i in range(250)]
    real_request = PrefectClient.request
    sent: list[tuple[str, int]] = []

    async def refusing(self, method, path, *args, **kwargs):
        body = kwargs.get("json")
        sent.append((path, len(body) if isinstance(body, list) else 1))
        response = await real_request(self, method, path, *args, **kwargs)
        if path.endswith("/bulk") and len(sent) <= 5:  # the first few refuse their last run
            results = response.json()["results"]
            results[-1] = {"status": "FAILED", "error": "database is locked"}
            return httpx.Response(200, json={"results": results}, request=response.request)
        return response

    monkeypatch.setattr(PrefectClient, "request", refusing)
    ids = await create_parked_runs(runs)

    bulk_sizes = [n for path, n in sent if path.endswith("/bulk")]
    assert bulk_sizes[0] == 100
    # the refused run asked for again in bulk (the loaded server may refuse a whole bulk first)
    assert 1 in bulk_sizes[1 : BULK_ATTEMPTS + 1]
    assert any(not path.endswith("/bulk") for path, _ in sent)  # one created alone
    assert len(set(ids)) == 250
    tag_of: dict[str, list[str]] = {}
    async with get_client() as client:
        for start in (0, 125):
            batch = [UUID(i) for i in ids[start : start + 125]]
            created = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=batch)), limit=125
            )
            tag_of |= {str(flow_run.id): flow_run.tags for flow_run in created}
    assert all(run.tag in tag_of[flow_run_id] for run, flow_run_id in zip(runs, ids, strict=True))
    assert await create_parked_runs(runs) == ids  # idempotent, in bulk too
