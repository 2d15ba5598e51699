"""A ``HubClient`` over ``httpx.MockTransport``, for faults the sandbox cannot make."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from onboarding.hub import ApiKeyAuth, BearerAuth, HubClient

__all__ = ["BASE_URL", "UNIT_KEY", "FakeClock", "bearer_auth", "channel", "mock_client", "page"]

BASE_URL = "http://hub.test/api/v2"
UNIT_KEY = "unit-secret-key-123"

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


class FakeClock:
    """A monotonic clock the test moves by hand (``clock.now += seconds``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bearer_auth(clock: FakeClock) -> BearerAuth:
    """Bearer auth with test credentials, a 60 s refresh margin, and ``clock`` as its time."""
    return BearerAuth("me@example.com", "pw", refresh_margin=60, clock=clock)


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
