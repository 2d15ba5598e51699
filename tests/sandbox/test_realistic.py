"""The sandbox answers the way real accounts do: key shapes, client permission, signups."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from onboarding.sandbox import SANDBOX_PARTNER_ID, SANDBOX_PASSWORD, SANDBOX_USERNAME
from tests.fixtures.sandbox import SandboxServer
from tests.polling import wait_for
from tests.sandbox.receiver import WebhookReceiver

CHANNELS = f"/partners/{SANDBOX_PARTNER_ID}/channels"


def _keys(api: httpx.Client, channel_id: str) -> httpx.Response:
    return api.post(f"{CHANNELS}/{channel_id}/api_keys")


@pytest.mark.parametrize(
    ("shape", "value_at"),
    [
        pytest.param("flat", lambda body: body["api_key"], id="flat"),
        pytest.param("wrapped", lambda body: body["api_keys"][0]["api_key"], id="wrapped"),
        pytest.param("key", lambda body: body["key"], id="key"),
    ],
)
def test_key_shape_is_selectable_through_the_control_api(
    sandbox: SandboxServer, api: httpx.Client, shape: str, value_at: Any
) -> None:
    """POST /sandbox/config key_shape switches how key creation answers; each carries a key."""
    sandbox.configure(key_shape=shape)
    channel = sandbox.create_channel(availability_status="ready", send_webhook=False)

    answer = _keys(api, channel["id"])

    assert answer.status_code == 201
    assert value_at(answer.json())
    assert "api_key" not in answer.json() or shape == "flat"


def test_reset_restores_the_flat_key_shape(sandbox: SandboxServer, api: httpx.Client) -> None:
    """A reset puts key_shape back to the sandbox's starting shape."""
    sandbox.configure(key_shape="wrapped")
    sandbox.reset()
    channel = sandbox.create_channel(availability_status="ready", send_webhook=False)

    assert "api_key" in _keys(api, channel["id"]).json()


def test_unknown_key_shape_is_refused(sandbox: SandboxServer) -> None:
    """The control API refuses a key shape it does not know with 400."""
    response = sandbox.control.post("/config", json={"key_shape": "nested"})

    assert response.status_code == 400
    assert "flat" in response.json()["meta"]["developer_message"]


@pytest.mark.parametrize("refusal", [403, 400])
def test_key_creation_is_refused_until_permission_is_granted(
    sandbox: SandboxServer, api: httpx.Client, receiver: WebhookReceiver, refusal: int
) -> None:
    """A channel needing permission refuses key creation (403/400); the grant sends the event."""
    channel = sandbox.create_channel(
        availability_status="ready", needs_permission=refusal, send_webhook=False
    )

    refused = _keys(api, channel["id"])
    assert refused.status_code == refusal
    assert "permission" in refused.json()["meta"]["developer_message"]
    assert sandbox.api_key_count(channel["id"]) == 0

    sandbox.control.post(f"/channels/{channel['id']}/permission").raise_for_status()

    assert _keys(api, channel["id"]).status_code == 201
    granted = wait_for(lambda: receiver.bodies)
    assert granted[0]["event"] == "channel_permission_granted"
    assert granted[0]["data"]["id"] == channel["id"]
    assert granted[0]["data"]["status"] == "ready"


def test_permission_is_granted_on_a_timer(
    sandbox: SandboxServer, api: httpx.Client, receiver: WebhookReceiver
) -> None:
    """grant_permission_after grants it later on the sandbox's own loop, with the webhook."""
    channel = sandbox.create_channel(
        availability_status="ready",
        needs_permission=True,
        grant_permission_after=0.2,
        send_webhook=False,
    )
    assert _keys(api, channel["id"]).status_code == 403

    wait_for(lambda: "channel_permission_granted" in receiver.events())

    assert _keys(api, channel["id"]).status_code == 201


def test_channel_without_availability_status_is_listed_without_it(
    sandbox: SandboxServer, api: httpx.Client
) -> None:
    """availability_status: null creates a channel whose object lacks the field entirely."""
    channel = sandbox.create_channel(availability_status=None, send_webhook=False)

    listed = api.get(CHANNELS, params={"filters": f'{{"id":"{channel["id"]}"}}'}).json()

    assert listed["partner_channels"][0]["id"] == channel["id"]
    assert "availability_status" not in listed["partner_channels"][0]


def test_token_answer_can_be_lowercase_without_expiry(
    sandbox: SandboxServer, api: httpx.Client
) -> None:
    """token_type and send_expires_in make the token answer look like real integrations saw it."""
    sandbox.configure(token_type="bearer", send_expires_in=False)

    answer = api.post("/token", json={"username": SANDBOX_USERNAME, "password": SANDBOX_PASSWORD})

    assert answer.json()["token_type"] == "bearer"
    assert "expires_in" not in answer.json()


def test_signup_returns_the_redirect_with_a_bracketed_list(sandbox: SandboxServer) -> None:
    """POST /sandbox/signup creates channels and a redirect URL with channels=[a,b] (not JSON)."""
    made = sandbox.control.post(
        "/signup", json={"channels": 2, "redirect_url": "https://partner.example/signup?x=1"}
    ).json()

    url = made["redirect_url"]
    query = urlsplit(url).query
    assert url.startswith("https://partner.example/signup?x=1&client=")
    assert f"channels=[{made['channel_ids'][0]},{made['channel_ids'][1]}]" in query
    assert parse_qs(query, keep_blank_values=True)["revoked"] == [""]
    assert parse_qs(query)["client"] == [made["client_id"]]
    assert all(
        sandbox.channel(cid)["client_id"] == made["client_id"] for cid in made["channel_ids"]
    )
    assert made["called"] is None


def test_signup_can_call_the_redirect_like_a_browser(
    sandbox: SandboxServer, receiver: WebhookReceiver
) -> None:
    """With call: true the sandbox GETs the redirect URL itself and reports what came back."""
    made = sandbox.control.post(
        "/signup", json={"redirect_url": receiver.url.replace("/hook", "/missing"), "call": True}
    ).json()

    assert made["called"]["status_code"] == 404
    assert "/missing?client=" in made["redirect_url"]
