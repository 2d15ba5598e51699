"""What a run leaves behind: a timeline artifact and a tagged run, and no secret anywhere."""

from __future__ import annotations

import json
import logging

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, LogFilter
from sqlalchemy import MetaData, select

from flows.onboard import onboard_in_process
from onboarding.store import make_engine


async def _flow_run(name: str):
    async with get_client() as client:
        [flow_run] = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
        )
        return flow_run


async def test_run_is_named_tagged_and_leaves_a_timeline(onboarding_env, sandbox):
    """The run is named onboard-<client>-<channel>, tagged, and publishes its timeline."""
    channel = sandbox.create_channel(settle_after=8, settle_to="ready")  # first read: setting_up
    await onboard_in_process(channel["id"], channel["client_id"])
    flow_run = await _flow_run(f"onboard-{channel['client_id']}-{channel['id']}")
    assert {"onboarding", "partner:sandbox-partner", f"client:{channel['client_id']}"} <= set(
        flow_run.tags
    )
    async with get_client() as client:
        response = await client._client.post(
            "/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [str(flow_run.id)]}}},
        )
    [artifact] = [a for a in response.json() if a["type"] == "markdown"]
    assert "setting_up" in artifact["data"]
    assert "ready" in artifact["data"]
    assert "completed" in artifact["data"]


async def test_api_keys_appear_in_no_log_artifact_event_or_row(
    onboarding_env, sandbox, db_url, callback_receiver, caplog
):
    """Neither the partner API key nor the channel's new Messaging API key is in any log line,
    artifact, Prefect event, or history row."""
    caplog.set_level(logging.DEBUG)
    channel = sandbox.create_channel(availability_status="ready", status="ready")
    state = await onboard_in_process(channel["id"], channel["client_id"])
    assert state.is_completed()
    [(body, _)] = callback_receiver.calls
    secrets = {json.loads(body)["api_key"], sandbox.api_key}
    flow_run = await _flow_run(f"onboard-{channel['client_id']}-{channel['id']}")

    texts = [record.getMessage() for record in caplog.records]
    async with get_client() as client:
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id={"any_": [flow_run.id]}))
        texts += [log.message for log in logs]
        artifacts = await client._client.post(
            "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [str(flow_run.id)]}}}
        )
        texts.append(artifacts.text)
        events = await client._client.post(
            "/events/filter",
            json={"filter": {"any_resource": {"id_prefix": ["prefect.flow-run", "onboarding"]}}},
        )
        texts.append(events.text)
        task_runs = await client._client.post(
            "/task_runs/filter", json={"flow_runs": {"id": {"any_": [str(flow_run.id)]}}}
        )
        texts.append(task_runs.text)
    engine = make_engine(db_url)
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            texts += [repr(tuple(row)) for row in connection.execute(select(table))]
    assert len(texts) > 10
    leaks = [text for text in texts if any(secret in text for secret in secrets)]
    assert leaks == []
