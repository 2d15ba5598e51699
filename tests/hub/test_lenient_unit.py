"""Where real accounts answer differently from our sandbox: key shapes, refusals, token answers."""

from __future__ import annotations

import pickle
from typing import Any

import httpx
import pytest

from onboarding.hub import (
    AuthError,
    BadResponse,
    BearerAuth,
    ChannelApiKey,
    HubRequestError,
    PermissionPending,
    is_retryable,
)

from .mock import Handler, bearer_listings, mock_client, page

KEY = "msg-api-key-value-5f2a"
FLAT = {"id": "k1", "address": "https://waba-v2.360dialog.io", "api_key": KEY, "app_id": "a1"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(FLAT, id="flat"),
        pytest.param({"api_keys": [FLAT]}, id="wrapped"),
        pytest.param({"id": "k1", "key": KEY}, id="key-field"),
        pytest.param({"api_keys": [{"id": "k1", "key": KEY}]}, id="wrapped-key-field"),
        pytest.param({"api_key": KEY}, id="key-only"),
    ],
)
def test_every_key_shape_yields_the_secret(body: dict[str, Any]) -> None:
    """Flat, wrapped and `key`-named answers give the key as a SecretStr; only it is required."""
    key = ChannelApiKey.model_validate(body)
    assert key.api_key.get_secret_value() == KEY
    assert KEY not in repr(key)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"api_keys": []}, id="empty-list"),
        pytest.param({"id": "k1", "address": "x"}, id="no-value"),
    ],
)
async def test_an_answer_without_a_key_value_is_bad_response(body: dict[str, Any]) -> None:
    """An answer with no key value anywhere raises BadResponse naming api_key."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json=body)

    async with mock_client(handler) as hub:
        with pytest.raises(BadResponse, match="api_key"):
            await hub.create_channel_api_key("ch1")


@pytest.mark.parametrize("status", [403, 400])
async def test_refused_key_creation_is_permission_pending(status: int) -> None:
    """403 or 400 on creating a key is PermissionPending with the channel and the API text."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = {"meta": {"http_code": status, "developer_message": "Client must grant access"}}
        return httpx.Response(status, json=body)

    async with mock_client(handler) as hub:
        with pytest.raises(PermissionPending) as caught:
            await hub.create_channel_api_key("ch-7")
    error = caught.value
    assert (error.channel_id, error.status_code) == ("ch-7", status)
    assert error.developer_message == "Client must grant access"
    assert isinstance(error, HubRequestError)
    assert not isinstance(error, AuthError)
    assert not is_retryable(error)


async def test_401_on_key_creation_stays_an_auth_error() -> None:
    """A 401 on key creation means the partner's credentials: AuthError, not PermissionPending."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"meta": {"developer_message": "Invalid API key"}})

    async with mock_client(handler) as hub:
        with pytest.raises(AuthError) as caught:
            await hub.create_channel_api_key("ch-7")
    assert not isinstance(caught.value, PermissionPending)


def test_permission_pending_survives_pickling() -> None:
    """Prefect pickles a failed task's exception: PermissionPending comes back with its fields."""
    error = PermissionPending(
        "403 from POST x", channel_id="ch-1", status_code=403, developer_message="grant it"
    )
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert (str(copy), copy.channel_id, copy.status_code, copy.developer_message) == (
        "403 from POST x",
        "ch-1",
        403,
        "grant it",
    )


def _token_hub(log: list[str], answer: dict[str, Any]):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            log.append("token")
            return httpx.Response(200, json={"access_token": f"tok-secret-{len(log)}", **answer})
        return page([], total=0)

    return handler


async def test_lowercase_bearer_without_expires_in_is_renewed_after_24_hours() -> None:
    """`token_type: bearer` without expires_in is accepted and renewed only after about 24 h."""

    def hub(log: list[str]) -> Handler:
        return _token_hub(log, {"token_type": "bearer"})

    assert await bearer_listings(hub, 86_400 - 120) == ["token"]
    assert await bearer_listings(hub, 86_400 - 120, 120) == ["token", "token"]


async def test_a_token_type_other_than_bearer_is_bad_response() -> None:
    """A token answer of another type is refused clearly, without showing the token."""
    log: list[str] = []
    handler = _token_hub(log, {"token_type": "mac"})
    async with mock_client(handler, auth=BearerAuth("u", "pw")) as hub:
        with pytest.raises(BadResponse, match="token_type") as caught:
            await hub.list_channels()
    assert "tok-secret" not in str(caught.value)
