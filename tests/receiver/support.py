"""Helpers for the receiver tests: a recording handoff, a served receiver and inbox reads."""

from __future__ import annotations

import contextlib
import functools
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from anyio import to_thread
from sqlalchemy import Engine
from sqlmodel import col, select

from onboarding.receiver import HandoffEvent, serve_config
from onboarding.store import InboundEvent, session_scope
from tests.polling import wait_for
from tests.servers import free_port

__all__ = [
    "TOKEN",
    "RecordingHandoff",
    "Served",
    "envelope",
    "handed",
    "inbox_row",
    "serve_receiver",
    "wait_until",
]

TOKEN = "path-token-7Qx9Lm2Vb4Nc8Zr1"


def envelope(event: str = "channel_created", **data: Any) -> bytes:
    """A webhook body ``{"event": event, "data": data}`` (a channel by default)."""
    if not data:
        data = {"id": "ch-1", "client_id": "cl-1", "status": "created"}
    return json.dumps({"event": event, "data": data}).encode()


def handed(event: HandoffEvent) -> tuple[int, str | None, str | None, str | None]:
    """What identifies a handed-on event: ``(inbox_id, event_type, channel_id, client_id)``."""
    return (event.inbox_id, event.event_type, event.channel_id, event.client_id)


wait_until = functools.partial(wait_for, timeout=60.0)
"""``wait_for`` with the receiver tests' longer deadline (the served receiver shares 2 cores)."""


@dataclass
class RecordingHandoff:
    """A fake handoff: records each event, optionally waits on ``gate``, then returns or raises."""

    outcome: str = "handled"
    error: Exception | None = None
    gate: threading.Event | None = None
    calls: list[HandoffEvent] = field(default_factory=list)

    async def __call__(self, event: HandoffEvent) -> str:
        """Record ``event``; raise ``error`` if set, else answer ``outcome``."""
        self.calls.append(event)
        if self.gate is not None:
            await to_thread.run_sync(self.gate.wait, 10.0, abandon_on_cancel=True)
        if self.error is not None:
            raise self.error
        return self.outcome


@contextlib.contextmanager
def serve_receiver(app: Any, *, log_level: str = "warning") -> Iterator[str]:
    """Serve ``app`` on loopback with the receiver's own :func:`serve_config`; yield its URL.

    ``log_config=None`` keeps uvicorn's loggers propagating to the root logger, so ``caplog``
    sees everything uvicorn would write.
    """
    port = free_port()
    config = serve_config(app, "127.0.0.1", port, log_level=log_level, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name=f"receiver-{port}")
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), what="uvicorn to start")
    if not server.started:
        raise RuntimeError(f"the receiver did not start on 127.0.0.1:{port}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def inbox_row(engine: Engine, inbox_id: int) -> InboundEvent:
    """One inbox row, freshly read."""
    with session_scope(engine) as session:
        row = session.get(InboundEvent, inbox_id)
        assert row is not None, f"no inbox row #{inbox_id}"
        return row


@dataclass
class Served:
    """A running receiver, the client that talks to it and the inbox it writes."""

    base: str
    engine: Engine
    client: httpx.Client

    def hook_url(self, token: str = TOKEN) -> str:
        """The webhook URL with ``token`` in its path."""
        return f"{self.base}/hooks/360dialog/{token}"

    def post(
        self,
        body: bytes | Any,
        *,
        token: str = TOKEN,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``body`` (bytes or bytes-yielding iterator, sent as-is) to the webhook URL."""
        merged = {"Content-Type": "application/json", **(headers or {})}
        return self.client.post(self.hook_url(token), content=body, headers=merged)

    def rows(self) -> list[InboundEvent]:
        """Every inbox row, oldest first."""
        with session_scope(self.engine) as session:
            return list(session.exec(select(InboundEvent).order_by(col(InboundEvent.id))))

    def row(self, inbox_id: int) -> InboundEvent:
        """One inbox row, freshly read."""
        return inbox_row(self.engine, inbox_id)

    def settled(self, inbox_id: int, outcome: str) -> InboundEvent:
        """Wait until row ``inbox_id`` has ``outcome``; return it."""

        def probe() -> InboundEvent | None:
            row = self.row(inbox_id)
            return row if row.outcome == outcome else None

        return wait_until(probe, what=f"inbox #{inbox_id} to become {outcome}")
