"""The sweep's reads and decisions: batched list calls against the sandbox, and the plan."""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime, timedelta

import pytest

from onboarding.hub import HubClient
from onboarding.hub.scan import read_partner_channels
from onboarding.settings import load_hub_settings
from tests.cli_process import run_cli
from tests.servers import free_port


def _hub(sandbox, page_size: int = 100) -> HubClient:
    return HubClient.from_settings(
        load_hub_settings(
            hub_url=sandbox.api_url,
            partner_id=sandbox.partner_id,
            api_key=sandbox.api_key,
            page_size=page_size,
        )
    )


async def test_sweep_reads_in_pages_not_per_channel(sandbox):
    """250 setting_up, 30 error and the newly ready channels cost ceil(250/100) + 2 list calls."""
    sandbox.bulk_channels(250)
    sandbox.bulk_channels(30, availability_status="error")
    sandbox.bulk_channels(40, availability_status="ready")
    sandbox.reset_request_counts()
    async with _hub(sandbox) as hub:
        read = await read_partner_channels(hub, tracked={}, ready_since=datetime.now(UTC))
    assert len([c for c in read.channels.values() if c.availability_status != "ready"]) == 280
    counts = sandbox.request_counts()
    assert counts["total"] == math.ceil(250 / 100) + 2


async def test_first_sweep_reads_the_whole_ready_list(sandbox):
    """Without a previous sweep every ready channel is read (the first sweep adopts them)."""
    ready = sandbox.bulk_channels(150, availability_status="ready")
    async with _hub(sandbox) as hub:
        read = await read_partner_channels(hub, tracked={}, ready_since=None)
    assert set(ready) <= set(read.channels)


async def test_tracked_channel_that_left_setting_up_is_found_in_the_ready_list(sandbox):
    """A tracked channel that became ready is found in the ready list, newest-modified first,
    reading no further back than the last sweep (here every ready channel is that recent)."""
    [tracked] = sandbox.bulk_channels(1)
    sandbox.bulk_channels(150, availability_status="ready")
    last_sweep = datetime.now(UTC)
    sandbox.set_status(tracked, "ready", status="ready")
    sandbox.reset_request_counts()
    async with _hub(sandbox) as hub:
        read = await read_partner_channels(
            hub, tracked={tracked: last_sweep}, ready_since=last_sweep
        )
    assert read.channels[tracked].availability_status == "ready"
    assert sandbox.request_counts()["total"] <= 2 + math.ceil(151 / 100)  # list calls only


async def test_tracked_channel_with_unknown_status_is_read_singly(sandbox):
    """A tracked channel in no list (an undocumented status) is read on its own, and kept."""
    [odd] = sandbox.bulk_channels(1)
    sandbox.set_status(odd, "migrating")
    async with _hub(sandbox) as hub:
        read = await read_partner_channels(
            hub, tracked={odd: datetime.now(UTC) - timedelta(minutes=1)}
        )
    assert read.channels[odd].availability_status == "migrating"


@pytest.mark.slow
# The fallback to a temporary Prefect server does not depend on the history's backend.
@pytest.mark.parametrize("test_database", ["sqlite"], indirect=True)
def test_sweep_cli_without_prefect_records_and_lists_what_it_would_do(
    onboarding_env, sandbox, db_url, tmp_path
):
    """With no reachable Prefect, `onboarding sweep --json` records snapshots and says what it
    would have started, and exits 0."""
    channel = sandbox.create_channel(send_webhook=False)
    env = {
        **os.environ,
        **onboarding_env,
        "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # the local fallback server starts slowly on a loaded CI machine (default 20 s)
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }
    result = run_cli("sweep", "--json", env=env, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert channel["id"] in summary["would_start"]
    assert summary["started"] == []
    assert summary["seen"]["setting_up"] >= 1
    assert "does not answer" in result.stderr


async def test_sweep_with_bad_credentials_alerts_once_per_partner(
    onboarding_env, sandbox, alert_sink, monkeypatch
):
    """A sweep refused by the Partner API fails with one grouped auth_failed alert, even twice."""
    from flows.watch import watch_channels

    sandbox.bulk_channels(3)
    monkeypatch.setenv("D360_API_KEY", "revoked-key")
    for _ in range(2):
        state = await watch_channels(return_state=True)
        assert state.is_failed()
    [alert] = alert_sink.received
    assert "auth" in json.dumps(alert).lower()


async def test_error_then_ready_channel_gets_a_resolve_notice(onboarding_env, sandbox, alert_sink):
    """A channel that failed with an error alert and later turns ready gets a resolve notice."""
    from flows.onboard import onboard_channel
    from flows.watch import watch_channels

    channel = sandbox.create_channel(availability_status="error", status="error")
    state = await onboard_channel(
        channel_id=channel["id"], client_id=channel["client_id"], return_state=True
    )
    assert state.is_failed()
    await watch_channels()
    sandbox.set_status(channel["id"], "ready", status="ready")
    await watch_channels()
    notices = [
        json.dumps(body) for body in alert_sink.received if channel["id"] in json.dumps(body)
    ]
    assert len(notices) == 2
    assert "resolved" in notices[1].lower()


async def test_sweep_publishes_progress_and_overview_artifacts(onboarding_env, sandbox):
    """A sweep leaves a progress artifact at 100 % and its table of channels and runs."""
    from prefect.client.orchestration import get_client

    from flows.watch import watch_channels

    sandbox.bulk_channels(3)
    await watch_channels()
    async with get_client() as client:
        latest = await client._client.post(
            "/artifacts/latest/filter",
            json={"artifacts": {"key": {"any_": ["watch-channels-progress", "watch-channels"]}}},
        )
    by_key = {artifact["key"]: artifact for artifact in latest.json()}
    assert float(by_key["watch-channels-progress"]["data"]) == 100.0
    table = json.dumps(by_key["watch-channels"]["data"])
    assert "setting_up" in table
