"""The served receiver hands webhooks to Prefect through one client, not one per handoff."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn
from prefect import get_client
from pydantic import SecretStr
from sqlalchemy import Engine

from onboarding.orchestration.shared_client import sharing_one_client
from onboarding.receiver import HandoffEvent, create_app, serve_config
from tests.receiver.support import TOKEN, envelope
from tests.servers import free_port


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (the test's loop owns them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def test_handoffs_share_one_prefect_client(prefect_api: str, engine: Engine) -> None:
    """Served inside ``sharing_one_client``, every handoff's ``get_client()`` is the same client
    (without it each built its own: a connection and, on a CSRF-protected server, a token)."""
    clients: list[Any] = []

    async def handoff(event: HandoffEvent) -> str:
        async with get_client() as client:
            await client.read_flow_runs(limit=1)  # a real request through it
            clients.append(client)
        return "handled"

    app = create_app(engine=engine, token=SecretStr(TOKEN), handoff=handoff)
    port = free_port()
    server = _Server(serve_config(app, "127.0.0.1", port, log_level="warning"))
    serving = asyncio.create_task(sharing_one_client(server.serve()))
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the receiver did not start"
            assert not serving.done(), serving
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(timeout=15) as http:
            for n in range(3):
                body = envelope(id=f"ch-{n}", client_id=f"cl-{n}", status="created")
                answer = await http.post(
                    f"http://127.0.0.1:{port}/hooks/360dialog/{TOKEN}", content=body
                )
                assert answer.status_code == 202, answer.text
        while len(clients) < 3:
            assert time.monotonic() < deadline, f"{len(clients)} of 3 handoffs ran"
            await asyncio.sleep(0.05)
    finally:
        server.should_exit = True
        await serving
    assert all(client is clients[0] for client in clients)
