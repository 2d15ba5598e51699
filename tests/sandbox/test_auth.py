"""Partner API authentication: API key, bearer login, 401 versus 403."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from onboarding.sandbox import (
    OTHER_API_KEY,
    OTHER_PARTNER_ID,
    SANDBOX_PARTNER_ID,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    create_app,
)
from tests.fixtures.sandbox import SandboxServer
from tests.servers import serve_in_thread

CHANNELS = f"/partners/{SANDBOX_PARTNER_ID}/channels"


def _login(base_url: str, username: str = SANDBOX_USERNAME, password: str = SANDBOX_PASSWORD):
    return httpx.post(f"{base_url}/token", json={"username": username, "password": password})


def test_api_key_reads_own_partner(api: httpx.Client) -> None:
    """The partner's own API key reads its partner object."""
    response = api.get(f"/partners/{SANDBOX_PARTNER_ID}")

    assert response.status_code == 200
    assert response.json()["id"] == SANDBOX_PARTNER_ID
    assert set(response.json()) >= {"brand_name", "webhook_url", "partner_redirect_url"}


def test_bearer_login_then_token_works(sandbox: SandboxServer) -> None:
    """POST /token returns a Bearer token that authorises Partner API calls."""
    login = _login(sandbox.api_url)
    body = login.json()

    response = httpx.get(
        sandbox.api_url + CHANNELS, headers={"Authorization": f"Bearer {body['access_token']}"}
    )

    assert login.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-credentials"),
        pytest.param({"X-API-Key": "wrong-key"}, id="wrong-api-key"),
        pytest.param({"Authorization": "Bearer not-a-token"}, id="unknown-token"),
    ],
)
def test_bad_credentials_get_401(sandbox: SandboxServer, headers: dict[str, str]) -> None:
    """Missing or wrong credentials are refused with 401 and the error envelope."""
    response = httpx.get(sandbox.api_url + CHANNELS, headers=headers)

    assert response.status_code == 401
    assert response.json()["meta"]["http_code"] == 401


def test_wrong_password_gets_401(sandbox: SandboxServer) -> None:
    """A login with the wrong password is refused with 401."""
    assert _login(sandbox.api_url, password="nope").status_code == 401


def test_other_partners_key_gets_403(sandbox: SandboxServer) -> None:
    """Valid credentials of another partner are refused with 403, not 401."""
    response = httpx.get(sandbox.api_url + CHANNELS, headers={"X-API-Key": OTHER_API_KEY})
    own = httpx.get(
        f"{sandbox.api_url}/partners/{OTHER_PARTNER_ID}/channels",
        headers={"X-API-Key": OTHER_API_KEY},
    )

    assert response.status_code == 403
    assert response.json()["meta"]["success"] is False
    assert own.status_code == 200


def test_configured_token_lifetime_is_reported(sandbox: SandboxServer) -> None:
    """The token lifetime configured on the sandbox is what POST /token reports."""
    sandbox.configure(token_expires_in=60)

    assert _login(sandbox.api_url).json()["expires_in"] == 60


def test_expired_token_gets_401() -> None:
    """A bearer token stops working once the sandbox clock passes its expiry."""
    now = [datetime(2025, 1, 1, tzinfo=UTC)]
    app = create_app(clock=lambda: now[0])
    with serve_in_thread(app) as url:
        api_url = f"{url}/api/v2"
        token = _login(api_url).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        before = httpx.get(api_url + CHANNELS, headers=headers)
        now[0] += timedelta(seconds=86_401)
        after = httpx.get(api_url + CHANNELS, headers=headers)

    assert before.status_code == 200
    assert after.status_code == 401
    assert "expired" in after.json()["meta"]["developer_message"]
