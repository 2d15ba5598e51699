"""The number's own webhook as a follow-up step: set with the new key before the callback."""

from __future__ import annotations

import json
from typing import Any

from flows.onboard import onboard_channel
from onboarding.store import find_runs, get_step, make_engine, session_scope
from tasks.channel_webhook import CHANNEL_WEBHOOK
from tasks.followup import NOTIFY_PARTNER

TEMPLATE = "https://hooks.partner.example/wa/{client_id}/{channel_id}?src=360"
HEADERS = {"Authorization": "Basic c2VjcmV0LWhlYWRlcg=="}


async def _onboard(channel: dict[str, Any]) -> Any:
    return await onboard_channel(
        channel_id=channel["id"], client_id=channel["client_id"], return_state=True
    )


def _steps(db_url: str, channel_id: str) -> tuple[Any, Any, Any]:
    with session_scope(make_engine(db_url)) as session:
        [run] = find_runs(session, channel_id=channel_id)
        webhook = get_step(session, run_id=run.id, step=CHANNEL_WEBHOOK)
        notify = get_step(session, run_id=run.id, step=NOTIFY_PARTNER)
        return run, webhook, notify


async def test_webhook_is_set_with_the_new_key_before_the_callback(
    onboarding_env, sandbox, db_url, callback_receiver, monkeypatch, caplog
):
    """The Messaging API gets the filled-in URL and headers with the delivered key; the callback
    says ``set``; the step is recorded; neither key nor header value is logged or recorded."""
    monkeypatch.setenv("ONBOARDING_CHANNEL_WEBHOOK_URL", TEMPLATE)
    monkeypatch.setenv("ONBOARDING_CHANNEL_WEBHOOK_HEADERS", json.dumps(HEADERS))
    channel = sandbox.create_channel(
        availability_status="ready", status="ready", client_id="client/1 x"
    )
    state = await _onboard(channel)
    assert state.is_completed(), state.message
    [(body, _)] = callback_receiver.calls
    payload = json.loads(body)
    assert payload["channel_webhook"] == "set"
    recorded = sandbox.channel_webhooks()[channel["id"]]
    expected = f"https://hooks.partner.example/wa/client%2F1%20x/{channel['id']}?src=360"
    assert recorded["url"] == expected
    assert recorded["headers"] == HEADERS
    assert recorded["key_id"] == payload["api_key_id"]  # set with the key the partner holds
    run, webhook, notify = _steps(db_url, channel["id"])
    assert run.state == "completed"
    assert webhook.outcome == "done"
    assert webhook.detail["attempt"] == 1
    assert webhook.done_at <= notify.done_at
    stored = json.dumps([webhook.detail, notify.detail])
    for secret in (payload["api_key"], HEADERS["Authorization"]):
        assert secret not in stored
        assert secret not in caplog.text


async def test_without_a_url_the_callback_says_not_configured(
    onboarding_env, sandbox, db_url, callback_receiver
):
    """No ONBOARDING_CHANNEL_WEBHOOK_URL: nothing is sent to the Messaging API."""
    channel = sandbox.create_channel(availability_status="ready", status="ready")
    state = await _onboard(channel)
    assert state.is_completed(), state.message
    [(body, _)] = callback_receiver.calls
    assert json.loads(body)["channel_webhook"] == "not_configured"
    assert sandbox.channel_webhooks() == {}
    assert "POST /configs/webhook" not in sandbox.request_counts()["counts"]


async def test_transient_messaging_api_failure_is_retried_by_prefect(
    onboarding_env, sandbox, db_url, callback_receiver, monkeypatch
):
    """Two 503s from the Messaging API: the task retries, one key, one callback."""
    monkeypatch.setenv("ONBOARDING_RETRY_DELAY", "0.01")
    monkeypatch.setenv("ONBOARDING_CHANNEL_WEBHOOK_URL", TEMPLATE)
    sandbox.add_fault("status", count=2, http_status=503, path_contains="/configs/webhook")
    channel = sandbox.create_channel(availability_status="ready", status="ready")
    state = await _onboard(channel)
    assert state.is_completed(), state.message
    assert sandbox.request_counts()["counts"]["POST /configs/webhook"] == 3
    assert sandbox.api_key_count(channel["id"]) == 1
    assert len(callback_receiver.calls) == 1
    assert channel["id"] in sandbox.channel_webhooks()


async def test_messaging_api_down_waits_and_alerts_like_an_undelivered_key(
    onboarding_env, sandbox, db_url, callback_receiver, alert_sink, monkeypatch
):
    """The webhook never set: no callback is sent, each attempt uses a fresh key, and after the
    retry window the run fails with one ``callback_failed`` alert."""
    monkeypatch.setenv("ONBOARDING_RETRY_DELAY", "0.01")
    monkeypatch.setenv("ONBOARDING_CALLBACK_RETRY_WINDOW", "1")
    monkeypatch.setenv("ONBOARDING_CHANNEL_WEBHOOK_URL", TEMPLATE)
    sandbox.add_fault("status", count=10_000, http_status=503, path_contains="/configs/webhook")
    channel = sandbox.create_channel(availability_status="ready", status="ready")
    state = await _onboard(channel)
    assert state.is_failed()
    run, webhook, notify = _steps(db_url, channel["id"])
    assert run.state == "failed"
    assert webhook.outcome == "failed"
    assert "503" in webhook.detail["error"]
    assert notify.outcome == "failed"
    assert "webhook" in notify.detail["error"]
    assert callback_receiver.calls == []
    assert sandbox.api_key_count(channel["id"]) >= 2
    alerts = [body for body in alert_sink.received if "callback_failed" in json.dumps(body)]
    assert len(alerts) == 1


async def test_a_refusal_is_not_retried_quickly(
    onboarding_env, sandbox, db_url, callback_receiver, monkeypatch
):
    """A 401 from the Messaging API is not retried by the task (a retry cannot fix it)."""
    monkeypatch.setenv("ONBOARDING_RETRY_DELAY", "0.01")
    monkeypatch.setenv("ONBOARDING_CALLBACK_RETRY_WINDOW", "0.5")
    monkeypatch.setenv("ONBOARDING_CHANNEL_WEBHOOK_URL", TEMPLATE)
    sandbox.add_fault("status", count=1, http_status=401, path_contains="/configs/webhook")
    channel = sandbox.create_channel(availability_status="ready", status="ready")
    state = await _onboard(channel)
    # The next attempt (a fresh key) gets through: one webhook call per key.
    assert state.is_completed(), state.message
    assert sandbox.api_key_count(channel["id"]) == 2
    assert sandbox.request_counts()["counts"]["POST /configs/webhook"] == 2
    [(body, _)] = callback_receiver.calls
    assert json.loads(body)["attempt"] == 2
