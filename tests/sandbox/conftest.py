"""Fixtures for the sandbox tests: a Partner API client and a loopback webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.sandbox import SandboxServer
from tests.sandbox.receiver import WebhookReceiver
from tests.servers import serve_in_thread


@pytest.fixture(scope="session")
def _receiver_server() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    with serve_in_thread(receiver.app()) as url:
        receiver.url = f"{url}/hook"
        yield receiver


@pytest.fixture
def receiver(_receiver_server: WebhookReceiver, sandbox: SandboxServer) -> WebhookReceiver:
    """A clean webhook receiver that the sandbox partner's webhooks point at."""
    _receiver_server.clear()
    sandbox.set_webhook_url(_receiver_server.url)
    return _receiver_server


@pytest.fixture
def api(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """An httpx client for the Partner API, authenticated as the sandbox partner by API key."""
    with httpx.Client(
        base_url=sandbox.api_url, headers={"X-API-Key": sandbox.api_key}, timeout=10
    ) as client:
        yield client
