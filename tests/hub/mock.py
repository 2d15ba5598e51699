"""A ``HubClient`` over ``httpx.MockTransport``, for faults the sandbox cannot make."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from onboarding.hub import ApiKeyAuth, BearerAuth, HubClient

__all__ = ["BASE_URL", "UNIT_KEY", "Handler", "bearer_listings", "channel", "mock_client", "page"]

BASE_URL = "http://hub.test/api/v2"
UNIT_KEY = "unit-secret-key-123"

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


class _FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def bearer_listings(make_handler: Callable[[list[str]], Handler], *waits: float) -> list[str]:
    """Bearer-auth listings on a fake clock; return the log that ``make_handler(log)`` kept.

    Lists the channels once (refresh margin 60 s), then again after each of ``waits`` seconds.
    """
    log: list[str] = []
    clock = _FakeClock()
    auth = BearerAuth("me@example.com", "pw", refresh_margin=60, clock=clock)
    async with mock_client(make_handler(log), auth=auth) as hub:
        await hub.list_channels()
        for seconds in waits:
            clock.now += seconds
            await hub.list_channels()
    return log


def mock_client(
    handler: Handler, *, auth: ApiKeyAuth | BearerAuth | None = None, **options: Any
) -> HubClient:
    """A client for partner ``p1`` whose every request is answered by ``handler``."""
    http = httpx.AsyncClient(base_url=BASE_URL, transport=httpx.MockTransport(handler))
    client = HubClient(http, partner_id="p1", auth=auth or ApiKeyAuth(UNIT_KEY), **options)
    client._owns_http = True  # let `async with client` close the mock http client too
    return client


def channel(channel_id: str, availability_status: str = "setting_up") -> dict[str, Any]:
    """A minimal channel object as the API sends it."""
    return {"id": channel_id, "availability_status": availability_status}


def page(items: list[dict[str, Any]], *, total: int, offset: int = 0) -> httpx.Response:
    """A channel list answer holding ``items``."""
    body = {"count": len(items), "total": total, "limit": 100, "offset": offset}
    return httpx.Response(200, json={**body, "partner_channels": items})
