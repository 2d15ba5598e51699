"""Cancel in-process: the worker asks a flow run to stop, the flow run stops itself.

The worker sees a cancel (Prefect's ``Cancelling``) and calls :func:`request`; the flow runs its
procedure under :func:`unless_cancelled`, which stops the procedure where it is (a request already
sent may complete; nothing after it runs) and lets the flow end ``Cancelled`` through Prefect's
own engine, with no crash and no failure hook. Across threads: the worker's loop requests, the
runs loop waits; a request may come before the run has started waiting.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import Any, TypeVar
from uuid import UUID

__all__ = ["CANCELLED", "forget", "request", "unless_cancelled"]

T = TypeVar("T")

_lock = threading.Lock()
_waiting: dict[UUID, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
_requested: set[UUID] = set()


class _Cancelled:
    """What :func:`unless_cancelled` returns when the run was cancelled."""

    def __repr__(self) -> str:
        return "CANCELLED"


CANCELLED = _Cancelled()


def request(flow_run_id: UUID) -> None:
    """Ask the flow run ``flow_run_id`` executing in this process to stop (from any thread)."""
    with _lock:
        _requested.add(flow_run_id)
        waiting = _waiting.get(flow_run_id)
    if waiting is not None:
        loop, event = waiting
        loop.call_soon_threadsafe(event.set)


def forget(flow_run_id: UUID) -> None:
    """Drop what is kept for a run that has ended."""
    with _lock:
        _requested.discard(flow_run_id)
        _waiting.pop(flow_run_id, None)


async def unless_cancelled(flow_run_id: UUID | None, work: Awaitable[T]) -> T | _Cancelled:
    """Await ``work``, unless the run is cancelled first: then stop it and return CANCELLED."""
    if flow_run_id is None:
        return await work
    event = asyncio.Event()
    with _lock:
        _waiting[flow_run_id] = (asyncio.get_running_loop(), event)
        if flow_run_id in _requested:
            event.set()
    body: asyncio.Future[T] = asyncio.ensure_future(work)
    stop: asyncio.Future[Any] = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({body, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        with _lock:
            _waiting.pop(flow_run_id, None)
    if body.done():
        stop.cancel()
        return body.result()
    body.cancel()
    await asyncio.wait({body})
    return CANCELLED
