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
async def make_hub(sandbox: SandboxServer) -> AsyncIterator[HubFactory]:
    """Build clients against the sandbox (API key auth unless ``auth=``); all closed afterwards."""
    opened: list[httpx.AsyncClient] = []

    def factory(
        *, auth: ApiKeyAuth | BearerAuth | None = None, timeout: float = 10.0, **options: Any
    ) -> HubClient:
        http = httpx.AsyncClient(base_url=sandbox.api_url, timeout=timeout)
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
