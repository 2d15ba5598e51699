"""The event loop a worker runs its flow runs on: its own thread, Prefect clients shared.

Why a thread of its own: Prefect's engine installs a SIGTERM handler when it runs in the main
thread, and several runs entering and leaving it out of order would leave the process with a
stale one; off the main thread it installs none, so a stop is the worker's to handle. Why shared
clients: with no client context around it, the engine builds a Prefect client (an httpx client,
a TLS context) for every run. The loop enters :class:`prefect.context.AsyncClientContext` and
:class:`~prefect.context.SyncClientContext` once, and every run starts inside that context.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import threading
from dataclasses import dataclass, field
from typing import Any

from prefect.client.orchestration import PrefectClient, SyncPrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.context import AsyncClientContext, SyncClientContext
from prefect.flow_engine import run_flow
from prefect.flows import Flow
from prefect.settings import (
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    get_current_settings,
    temporary_settings,
)

__all__ = ["RunsLoop"]


@dataclass
class RunsLoop:
    """A running event loop in a daemon thread, for flow runs."""

    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    _context: contextvars.Context | None = field(default=None, repr=False)
    _holder: asyncio.Task[None] | None = field(default=None, repr=False)
    _close: asyncio.Event | None = field(default=None, repr=False)

    @classmethod
    def start(cls) -> RunsLoop:
        """Start the thread and its loop; returns once the shared clients are open."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        runs = cls(loop, threading.Thread(target=lambda: None))

        async def hold_clients() -> None:
            runs._close = asyncio.Event()
            with _heartbeats_unless_configured():
                async with AsyncClientContext.get_or_create() as shared:
                    with SyncClientContext.get_or_create() as shared_sync:
                        await _prime(shared.client, shared_sync.client)
                        runs._context = contextvars.copy_context()
                        ready.set()
                        await runs._close.wait()

        def main() -> None:
            asyncio.set_event_loop(loop)
            runs._holder = loop.create_task(hold_clients())
            loop.run_forever()

        runs.thread = threading.Thread(target=main, name="onboarding-runs", daemon=True)
        runs.thread.start()
        ready.wait(30)
        return runs

    def submit(self, flow: Flow[..., Any], flow_run: FlowRun) -> concurrent.futures.Future[Any]:
        """Execute ``flow_run`` on this loop; the future holds its final state."""
        # In a copy of the shared context: a task runs *in* the context current when it is
        # created, and runs setting their own FlowRunContext in one context would overwrite
        # each other's.
        context = self._context.copy() if self._context else contextvars.copy_context()
        return context.run(asyncio.run_coroutine_threadsafe, _execute(flow, flow_run), self.loop)

    def stop(self, *, abandon: bool) -> None:
        """Stop the loop. ``abandon``: where it is, runs in flight and all (none of their code
        runs again); otherwise close the shared clients first."""
        if not abandon and self._holder is not None and self._close is not None:
            self.loop.call_soon_threadsafe(self._close.set)
            closed = asyncio.run_coroutine_threadsafe(asyncio.wait({self._holder}), self.loop)
            closed.result(10)
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _heartbeats_unless_configured() -> contextlib.AbstractContextManager[Any]:
    """Prefect's flow-run heartbeats off, unless ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` is set.

    By default Prefect's engine starts a thread per flow run that emits a heartbeat event at once
    and every 3 minutes: an event per onboarding that nothing here reads (the sweep finds
    stalled runs by their history's owner lease). Set the frequency to have them again, for a
    zombie-detection automation of your own.
    """
    if "heartbeat_frequency" in get_current_settings().flows.model_fields_set:
        return contextlib.nullcontext()
    return temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


async def _prime(client: PrefectClient, sync_client: SyncPrefectClient) -> None:
    """Send one filter request (a POST) through each shared client before any run does.

    Where the server has CSRF protection on (``up``, deployments/scale), a client fetches its
    token with its first POST, and a new token replaces the old one. Twenty runs making their
    first POST at once through one shared client fetched twenty tokens, each invalidating the
    others': some requests failed 403 even after Prefect's retry, and their runs ``Failed``.
    Fetched once here, the token is shared (it lasts ``PREFECT_SERVER_CSRF_TOKEN_EXPIRATION``).
    """
    with contextlib.suppress(Exception):  # the API may be down yet: the runs will find out
        await client.read_flow_runs(limit=1)
        await asyncio.to_thread(sync_client.read_flow_runs, limit=1)


async def _execute(flow: Flow[..., Any], flow_run: FlowRun) -> Any:
    """Run one claimed flow run to its end; its engine reports every state."""
    if flow.isasync:
        return await run_flow(flow, flow_run=flow_run, return_type="state")  # type: ignore[misc]
    return await asyncio.to_thread(run_flow, flow, flow_run=flow_run, return_type="state")
