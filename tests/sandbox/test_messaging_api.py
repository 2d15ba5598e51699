"""The sandbox's Messaging API side: a channel's own key sets its number's webhook."""

from __future__ import annotations

import httpx

from onboarding.sandbox import SANDBOX_PARTNER_ID
from tests.fixtures.sandbox import SandboxServer

KEYS = f"/partners/{SANDBOX_PARTNER_ID}/channels/{{channel_id}}/api_keys"


def _new_key(api: httpx.Client, channel_id: str) -> dict[str, str]:
    response = api.post(KEYS.format(channel_id=channel_id))
    assert response.status_code == 201
    return response.json()


def test_key_answer_points_at_the_sandbox_and_sets_the_webhook(
    sandbox: SandboxServer, api: httpx.Client
) -> None:
    """The key's address is the sandbox; its configs/webhook records url and headers per channel."""
    channel = sandbox.create_channel(availability_status="ready")
    key = _new_key(api, channel["id"])
    assert key["address"] == sandbox.url
    body = {"url": "https://partner.example/wa/1", "headers": {"Authorization": "Basic eA=="}}
    response = httpx.post(
        f"{key['address']}/v1/configs/webhook", json=body, headers={"D360-API-KEY": key["api_key"]}
    )
    assert response.status_code == 200
    recorded = sandbox.channel_webhooks()[channel["id"]]
    assert recorded["url"] == body["url"]
    assert recorded["headers"] == body["headers"]
    assert recorded["key_id"] == key["id"]
    assert sandbox.request_counts()["counts"]["POST /configs/webhook"] == 1


def test_a_revoked_or_wrong_key_is_refused(sandbox: SandboxServer, api: httpx.Client) -> None:
    """Creating a new key revokes the earlier one on the Messaging API side too."""
    channel = sandbox.create_channel(availability_status="ready")
    first = _new_key(api, channel["id"])
    _new_key(api, channel["id"])
    for value in (first["api_key"], "not-a-key", ""):
        response = httpx.post(
            f"{sandbox.url}/v1/configs/webhook",
            json={"url": "https://partner.example/wa"},
            headers={"D360-API-KEY": value},
        )
        assert response.status_code == 401
    assert sandbox.channel_webhooks() == {}


def test_bad_body_is_400_and_faults_apply(sandbox: SandboxServer, api: httpx.Client) -> None:
    """A URL that is not http(s) is refused; a queued fault answers in its place."""
    channel = sandbox.create_channel(availability_status="ready")
    key = _new_key(api, channel["id"])
    url = f"{sandbox.url}/v1/configs/webhook"
    headers = {"D360-API-KEY": key["api_key"]}
    assert httpx.post(url, json={"url": "ftp://x"}, headers=headers).status_code == 400
    sandbox.add_fault("status", http_status=503, path_contains="/configs/webhook")
    assert httpx.post(url, json={"url": "https://x.example"}, headers=headers).status_code == 503
    assert httpx.post(url, json={"url": "https://x.example"}, headers=headers).status_code == 200
