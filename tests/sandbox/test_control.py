"""The control API: admin key, request counts, bulk create, API keys, reset."""

from __future__ import annotations

import httpx
import pytest

from onboarding.sandbox import SANDBOX_PARTNER_ID
from tests.fixtures.sandbox import SandboxServer

CHANNELS = f"/partners/{SANDBOX_PARTNER_ID}/channels"


@pytest.mark.parametrize("headers", [{}, {"X-Sandbox-Admin-Key": "wrong"}], ids=["none", "wrong"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/reset"), ("POST", "/channels"), ("GET", "/requests"), ("GET", "/webhooks")],
)
def test_control_api_needs_admin_key(
    sandbox: SandboxServer, headers: dict[str, str], method: str, path: str
) -> None:
    """Control routes refuse a missing or wrong admin key with 401."""
    response = httpx.request(method, f"{sandbox.url}/sandbox{path}", headers=headers, json={})

    assert response.status_code == 401
    assert response.json()["meta"]["http_code"] == 401


def test_healthz_needs_no_key(sandbox: SandboxServer) -> None:
    """The health check answers without the admin key."""
    assert httpx.get(f"{sandbox.url}/sandbox/healthz").json() == {"ok": True}


def test_requests_counted_by_route_template(sandbox: SandboxServer, api: httpx.Client) -> None:
    """Partner API calls are counted per method and route template; control calls are not."""
    channel = sandbox.create_channel()
    api.get(CHANNELS)
    api.get(CHANNELS, params={"offset": 5})
    api.post(f"{CHANNELS}/{channel['id']}/api_keys")
    api.get(f"/partners/{SANDBOX_PARTNER_ID}")

    counts = sandbox.request_counts()

    assert counts == {
        "total": 4,
        "counts": {
            "GET /partners/{partner_id}/channels": 2,
            "POST /partners/{partner_id}/channels/{channel_id}/api_keys": 1,
            "GET /partners/{partner_id}": 1,
        },
    }


def test_request_counts_reset(sandbox: SandboxServer, api: httpx.Client) -> None:
    """DELETE /sandbox/requests zeroes the counters."""
    api.get(CHANNELS)

    sandbox.reset_request_counts()

    assert sandbox.request_counts() == {"total": 0, "counts": {}}


def test_bulk_create_ten_thousand(sandbox: SandboxServer, api: httpx.Client) -> None:
    """Bulk create makes 10,000 distinct channels that the list call counts."""
    ids = sandbox.bulk_channels(10_000)

    page = api.get(
        CHANNELS, params={"limit": 1, "filters": '{"availability_status": "setting_up"}'}
    )

    assert len(set(ids)) == 10_000
    assert page.json()["total"] == 10_000


def test_api_keys_are_new_each_time_and_counted(sandbox: SandboxServer, api: httpx.Client) -> None:
    """Each API-key call returns a new key (201) and the control API counts them per channel."""
    channel = sandbox.create_channel(availability_status="ready")
    path = f"{CHANNELS}/{channel['id']}/api_keys"

    first, second = api.post(path), api.post(path)

    assert (first.status_code, second.status_code) == (201, 201)
    assert set(first.json()) == {"id", "address", "api_key", "app_id"}
    assert first.json()["api_key"] != second.json()["api_key"]
    assert sandbox.api_key_count(channel["id"]) == 2


def test_api_key_for_unknown_channel_is_404(sandbox: SandboxServer, api: httpx.Client) -> None:
    """Asking a key for a channel that does not exist is a 404."""
    response = api.post(f"{CHANNELS}/nope/api_keys")

    assert response.status_code == 404
    assert response.json()["meta"]["http_code"] == 404


def test_create_channel_for_existing_client(sandbox: SandboxServer) -> None:
    """A channel created with an existing client_id belongs to that client."""
    client = sandbox.create_client(name="Acme", email="acme@example.com")

    channel = sandbox.create_channel(client_id=client["id"])

    assert channel["client"] == {
        "id": client["id"],
        "name": "Acme",
        "contact_info": {"email": "acme@example.com"},
    }


def test_reset_clears_everything(sandbox: SandboxServer, api: httpx.Client) -> None:
    """A reset leaves only the seeded partners: no channels, faults, counts or webhook URL."""
    sandbox.create_channel()
    sandbox.set_webhook_url("https://partner.example.com/hook")
    sandbox.add_fault("status", count=3, http_status=500)
    sandbox.configure(max_limit=5)

    sandbox.reset()
    page = api.get(CHANNELS).json()

    assert page["total"] == 0
    assert sandbox.state.max_limit == 1000
    assert api.get(f"/partners/{SANDBOX_PARTNER_ID}/webhook_url").json()["webhook_url"] is None
    assert sandbox.request_counts()["total"] == 2
