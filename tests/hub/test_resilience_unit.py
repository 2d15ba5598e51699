"""Rate limits, concurrency, bearer refresh and error mapping, over ``httpx.MockTransport``."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from onboarding.hub import AuthError, BadResponse, BearerAuth, HubUnavailable, RateLimited

from .mock import bearer_listings, channel, mock_client, page

TOKEN_PATH = "/api/v2/token"


async def test_429_without_retry_after_backs_off_then_succeeds() -> None:
    """Without Retry-After the client backs off on its own and retries until the API answers."""
    answers = [httpx.Response(429), httpx.Response(429), page([channel("a")], total=1)]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    async with mock_client(handler, max_rate_limit_waits=2) as hub:
        hub.backoff_base = 0.001
        result = await hub.list_channels()
    assert [c.id for c in result.items] == ["a"]
    assert answers == []


async def test_retry_after_is_capped_by_max_retry_after() -> None:
    """A huge Retry-After is capped at max_retry_after rather than stalling the caller."""
    answers = [httpx.Response(429, headers={"Retry-After": "3600"}), page([], total=0)]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    started = time.monotonic()
    async with mock_client(handler, max_retry_after=0.05) as hub:
        await hub.list_channels()
    assert time.monotonic() - started < 5


async def test_rate_limited_carries_the_last_retry_after() -> None:
    """After its waits run out the client raises retryable RateLimited with its advice."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "0.01"})

    async with mock_client(handler, max_rate_limit_waits=1) as hub:
        with pytest.raises(RateLimited) as caught:
            await hub.list_channels()
    assert caught.value.retry_after == pytest.approx(0.01)
    assert caught.value.retryable
    assert caught.value.status_code == 429


async def test_concurrency_is_capped() -> None:
    """No more than max_concurrency requests are in flight at once, however many callers wait."""
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return page([], total=0)

    async with mock_client(handler, max_concurrency=3) as hub:
        await asyncio.gather(*(hub.list_channels() for _ in range(12)))
    assert peak == 3


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(httpx.ConnectError("refused"), id="connect"),
        pytest.param(httpx.ReadTimeout("slow"), id="read-timeout"),
        pytest.param(httpx.RemoteProtocolError("cut"), id="protocol"),
    ],
)
async def test_transport_errors_become_hub_unavailable(error: httpx.TransportError) -> None:
    """Network failures surface as retryable HubUnavailable chained to the httpx error."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    async with mock_client(handler) as hub:
        with pytest.raises(HubUnavailable) as caught:
            await hub.list_channels()
    assert caught.value.__cause__ is error
    assert caught.value.retryable
    assert caught.value.request == "GET http://hub.test/api/v2/partners/p1/channels"


def _bearer_handler(log: list[str], *, expires_in: int = 100, valid: set[str] | None = None):
    """A hub that issues numbered tokens and accepts those in ``valid`` (all when None)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == TOKEN_PATH:
            token = f"tok-{sum(entry == 'token' for entry in log) + 1}"
            log.append("token")
            return httpx.Response(200, json={"access_token": token, "expires_in": expires_in})
        token = request.headers["Authorization"].removeprefix("Bearer ")
        log.append(token)
        if valid is not None and token not in valid:
            return httpx.Response(401, json={"meta": {"developer_message": "expired"}})
        return page([], total=0)

    return handler


async def test_bearer_token_is_refreshed_before_expiry() -> None:
    """The token is reused while fresh and renewed once the clock passes lifetime minus margin."""
    # the margin is min(60, 10% of 100) = 10 s: still fresh at 85 s, renewed at 95 s
    log = await bearer_listings(lambda log: _bearer_handler(log, expires_in=100), 85, 10)
    assert log == ["token", "tok-1", "tok-1", "token", "tok-2"]


async def test_bearer_401_logs_in_again_once_and_retries_once() -> None:
    """A 401 on a bearer request triggers one new login and one retry, which then succeeds."""
    log: list[str] = []
    async with mock_client(
        _bearer_handler(log, valid={"tok-2"}), auth=BearerAuth("u", "pw")
    ) as hub:
        await hub.list_channels()
    assert log == ["token", "tok-1", "token", "tok-2"]


async def test_bearer_401_twice_is_auth_error_without_a_third_try() -> None:
    """If the fresh token is refused too, AuthError is raised after exactly two attempts."""
    log: list[str] = []
    async with mock_client(_bearer_handler(log, valid=set()), auth=BearerAuth("u", "pw")) as hub:
        with pytest.raises(AuthError, match="expired") as caught:
            await hub.list_channels()
    assert log == ["token", "tok-1", "token", "tok-2"]
    assert not caught.value.retryable
    assert not caught.value.forbidden


async def test_malformed_token_answer_is_bad_response_without_body() -> None:
    """A token answer without access_token raises BadResponse and never shows the body."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"token": "sekrit-token-value"})

    async with mock_client(handler, auth=BearerAuth("u", "pw")) as hub:
        with pytest.raises(BadResponse, match="access_token") as caught:
            await hub.list_channels()
    assert "sekrit-token-value" not in str(caught.value)
