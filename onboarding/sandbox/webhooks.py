"""The partner-webhook sender: POSTs ``{"event", "data"}`` to a partner's webhook URL.

Deliveries go through one queue and one worker, so the events of a channel arrive in the order
they happened (``channel_created`` before ``channel_ready``). Failures are recorded, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from onboarding.sandbox.models import iso

__all__ = ["WebhookSender"]


class WebhookSender:
    """Queue partner-webhook deliveries and record the outcome of each."""

    def __init__(self, *, clock: Callable[[], datetime], timeout: float = 3.0) -> None:
        self._clock = clock
        self._timeout = timeout
        self._queue: asyncio.Queue[tuple[int, str, str, dict[str, Any]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._generation = 0
        self.deliveries: list[dict[str, Any]] = []

    async def start(self) -> None:
        """Start the delivery worker on the running loop (called from the app lifespan)."""
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run(), name="sandbox-webhooks")

    async def stop(self) -> None:
        """Stop the worker; undelivered events are dropped."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._worker = None

    def send(self, url: str | None, event: str, data: dict[str, Any]) -> None:
        """Queue ``event`` for ``url`` (nothing happens without a URL or before start)."""
        if url is None or self._queue is None:
            return
        # Snapshot now: the object may change again before the delivery goes out.
        self._queue.put_nowait((self._generation, url, event, copy.deepcopy(data)))

    def reset(self) -> None:
        """Forget recorded deliveries and drop queued ones; in-flight ones are not recorded."""
        self._generation += 1
        self.deliveries = []
        if self._queue is not None:
            while not self._queue.empty():
                self._queue.get_nowait()

    async def _run(self) -> None:
        assert self._queue is not None
        async with httpx.AsyncClient(timeout=self._timeout) as http:
            while True:
                generation, url, event, data = await self._queue.get()
                record = await self._deliver(http, url, event, data)
                if generation == self._generation:
                    self.deliveries.append(record)

    async def _deliver(
        self, http: httpx.AsyncClient, url: str, event: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        """POST one event; the record says what happened."""
        record: dict[str, Any] = {
            "event": event,
            "url": url,
            "object_id": data.get("id"),
            "status_code": None,
            "error": None,
            "at": iso(self._clock()),
        }
        try:
            response = await http.post(url, json={"event": event, "data": data})
            record["status_code"] = response.status_code
        except httpx.HTTPError as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
        return record
