"""A Partner API 404 for the channel ends the onboarding `failed`, "channel not found", with one
`channel_not_found` alert, never `flow_crashed` (issue 20). In-process, against the sandbox, a
real Prefect API and real databases."""

from __future__ import annotations

import json

import pytest

from flows.onboard import onboard_channel
from onboarding.hub import HubClient
from onboarding.settings import HubSettings
from onboarding.store import find_runs, make_engine, open_alerts, session_scope
from tasks.missing import NOT_FOUND


def _runs(db_url: str, channel_id: str):
    with session_scope(make_engine(db_url)) as session:
        return find_runs(session, channel_id=channel_id)


def _alert_kinds(db_url: str, channel_id: str) -> list[str]:
    with session_scope(make_engine(db_url)) as session:
        return [alert.kind for alert in open_alerts(session, channel_id=channel_id)]


def _assert_not_found(state, db_url: str, channel_id: str, alert_sink) -> None:
    assert state.is_failed(), state.message
    assert state.message == NOT_FOUND
    [run] = _runs(db_url, channel_id)
    assert (run.state, run.failure_reason) == ("failed", NOT_FOUND)
    assert _alert_kinds(db_url, channel_id) == ["channel_not_found"]
    # Only this channel's: the session's worker may alert on other tests' onboardings meanwhile.
    [alert] = [a for a in alert_sink.received if channel_id in json.dumps(a)]
    assert "flow_crashed" not in json.dumps(alert)


async def test_a_404_creating_the_key_fails_with_its_reason(
    onboarding_env, sandbox, db_url, alert_sink
):
    """The channel is read ready, then key creation answers 404: failed, one alert of its own."""
    channel = sandbox.create_channel(availability_status="ready", status="ready")
    sandbox.add_fault("status", count=1, http_status=404, path_contains="/api_keys")
    state = await onboard_channel(
        channel_id=channel["id"], client_id=channel["client_id"], return_state=True
    )
    _assert_not_found(state, db_url, channel["id"], alert_sink)


async def test_an_unknown_channel_past_the_grace_fails_instead_of_waiting(
    onboarding_env, db_url, alert_sink, monkeypatch: pytest.MonkeyPatch
):
    """A webhook-named channel the partner does not have is looked for over the grace, then
    fails, long before the setup deadline."""
    monkeypatch.setenv("ONBOARDING_UNKNOWN_CHANNEL_GRACE", "0.5")
    state = await onboard_channel(
        channel_id="nosuchchannel1", client_id="cl-someone", trigger="webhook", return_state=True
    )
    _assert_not_found(state, db_url, "nosuchchannel1", alert_sink)


async def test_a_manual_onboarding_of_an_unknown_id_fails_at_once(
    onboarding_env, sandbox, db_url, alert_sink
):
    """Without a client (nobody vouched for the id) there is no grace: one read after the claim."""
    sandbox.reset_request_counts()
    state = await onboard_channel(channel_id="nosuchchannel2", return_state=True)
    _assert_not_found(state, db_url, "nosuchchannel2", alert_sink)
    [run] = _runs(db_url, "nosuchchannel2")
    assert run.client_id == "unknown"


async def test_the_sandbox_routes_an_id_holding_a_slash_like_any_other(sandbox) -> None:
    """Key creation for ``a/b`` (sent as ``a%2Fb``, one segment) reaches the channel."""
    channel = sandbox.create_channel(id="acme/CH1", availability_status="ready", send_webhook=False)
    settings = HubSettings(
        hub_url=sandbox.api_url, partner_id=sandbox.partner_id, api_key=sandbox.api_key
    )
    async with HubClient.from_settings(settings) as hub:
        key = await hub.create_channel_api_key(channel["id"])
        assert (await hub.get_channel("acme/CH1")).id == "acme/CH1"
    assert key.api_key
