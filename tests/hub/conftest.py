"""Fixtures for the contract tests: a ``HubClient`` pointed at the sandbox over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from onboarding.hub import ApiKeyAuth, BearerAuth, HubClient
from tests.fixtures.sandbox import SandboxServer

HubFactory = Callable[..., HubClient]


@pytest.fixture
def sent() -> list[httpx.Request]:
    """Every request this test's clients sent (the session sandbox also hears other processes)."""
    return []


def channel_listings(sent: list[httpx.Request]) -> int:
    """How many channel pages this test's clients asked for."""
    return sum(1 for r in sent if r.method == "GET" and r.url.path.endswith("/channels"))


@pytest.fixture
async def make_hub(sandbox: SandboxServer, sent: list[httpx.Request]) -> AsyncIterator[HubFactory]:
    """Build clients against the sandbox (API key auth unless ``auth=``); all closed afterwards."""
    opened: list[httpx.AsyncClient] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    def factory(
        *, auth: ApiKeyAuth | BearerAuth | None = None, timeout: float = 10.0, **options: Any
    ) -> HubClient:
        http = httpx.AsyncClient(
            base_url=sandbox.api_url, timeout=timeout, event_hooks={"request": [record]}
        )
        opened.append(http)
        auth = auth or ApiKeyAuth(sandbox.api_key)
        return HubClient(http, partner_id=sandbox.partner_id, auth=auth, **options)

    yield factory
    for http in opened:
        await http.aclose()


@pytest.fixture
def hub(make_hub: HubFactory) -> HubClient:
    """A client for the sandbox partner, authenticated with its API key."""
    return make_hub()
