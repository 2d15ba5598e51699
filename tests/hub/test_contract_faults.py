"""Contract tests: auth failures, injected faults and secret hygiene, against the sandbox."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from onboarding.hub import (
    ApiKeyAuth,
    AuthError,
    BadResponse,
    HubClient,
    HubError,
    HubUnavailable,
    RateLimited,
)
from onboarding.sandbox import OTHER_API_KEY
from tests.fixtures.sandbox import SandboxServer

from .conftest import HubFactory, channel_listings


@pytest.mark.parametrize(
    ("key", "forbidden"),
    [pytest.param("wrong-key", False, id="401"), pytest.param(OTHER_API_KEY, True, id="403")],
)
async def test_auth_failures_raise_auth_error_without_retry(
    make_hub: HubFactory, sent: list[httpx.Request], key: str, forbidden: bool
) -> None:
    """A wrong key (401) or another partner's key (403) raises AuthError after one request."""
    hub = make_hub(auth=ApiKeyAuth(key))
    with pytest.raises(AuthError) as caught:
        await hub.list_channels()
    assert caught.value.forbidden is forbidden
    assert not caught.value.retryable
    assert caught.value.status_code == (403 if forbidden else 401)
    assert key not in str(caught.value)
    assert key not in repr(caught.value)
    assert channel_listings(sent) == 1


async def test_retry_after_is_honoured(
    hub: HubClient, sandbox: SandboxServer, sent: list[httpx.Request]
) -> None:
    """A 429 with Retry-After 1 is waited out (at least ~1 s) and the retried call succeeds."""
    sandbox.add_fault("status", http_status=429, retry_after=1, path_contains="/channels")
    started = time.monotonic()
    page = await hub.list_channels()
    assert time.monotonic() - started >= 0.9
    assert page.total == 0
    assert channel_listings(sent) == 2


async def test_429_beyond_the_waits_is_rate_limited(
    make_hub: HubFactory, sandbox: SandboxServer, sent: list[httpx.Request]
) -> None:
    """When 429s outlast max_rate_limit_waits RateLimited comes after waits + 1 tries."""
    sandbox.add_fault("status", count=5, http_status=429, retry_after=0.01)
    hub = make_hub(max_rate_limit_waits=2)
    with pytest.raises(RateLimited) as caught:
        await hub.list_channels()
    assert caught.value.retryable
    assert caught.value.retry_after == pytest.approx(0.01)
    assert channel_listings(sent) == 3


async def test_server_error_is_hub_unavailable(
    hub: HubClient, sandbox: SandboxServer, sent: list[httpx.Request]
) -> None:
    """A 500 raises retryable HubUnavailable carrying developer_message, without a client retry."""
    sandbox.add_fault("status", http_status=500)
    with pytest.raises(HubUnavailable, match="Injected fault") as caught:
        await hub.list_channels()
    assert caught.value.retryable
    assert caught.value.status_code == 500
    assert channel_listings(sent) == 1


async def test_slow_answer_beyond_timeout_is_hub_unavailable(
    make_hub: HubFactory, sandbox: SandboxServer
) -> None:
    """A response slower than the client timeout raises HubUnavailable chained to the timeout."""
    sandbox.add_fault("slow", delay=2.0)
    hub = make_hub(timeout=0.3)
    with pytest.raises(HubUnavailable, match="timed out") as caught:
        await hub.list_channels()
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


async def test_malformed_body_is_bad_response_with_truncated_body(
    hub: HubClient, sandbox: SandboxServer
) -> None:
    """A non-JSON 200 raises BadResponse showing what was expected and the body cut short."""
    body = "<html>" + "x" * 5000 + "</html>"
    sandbox.add_fault("malformed", body=body)
    with pytest.raises(BadResponse) as caught:
        await hub.list_channels()
    message = str(caught.value)
    assert "expected a JSON object" in message
    assert "<html>xxx" in message
    assert len(message) < 500
    assert not caught.value.retryable


async def test_api_key_never_leaks(
    make_hub: HubFactory, sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The API key appears in no repr, no log record (httpx/httpcore included) and no error."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "onboarding"):
        caplog.set_level(logging.DEBUG, logger=name)
    hub = make_hub()
    errors: list[HubError] = []
    sandbox.bulk_channels(2)
    _ = [c async for c in hub.iter_channels()]
    for kind, options in [
        ("status", {"http_status": 500}),
        ("status", {"http_status": 400}),
        ("malformed", {}),
    ]:
        sandbox.add_fault(kind, **options)
        with pytest.raises(HubError) as caught:
            await hub.list_channels()
        errors.append(caught.value)
    secret = sandbox.api_key
    assert "partner_id='sandbox-partner'" in repr(hub)
    assert secret not in repr(hub)
    assert caplog.records, "expected DEBUG records from the client and httpx"
    assert secret not in caplog.text
    assert all(secret not in str(record.args) for record in caplog.records)
    for error in errors:
        assert secret not in str(error)
        assert secret not in repr(error)
        assert error.request is not None
        assert secret not in error.request
