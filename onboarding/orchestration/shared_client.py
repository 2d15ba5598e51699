"""One Prefect client for everything a webhook-serving process hands to Prefect.

Outside a flow run, each ``get_client()`` builds a client of its own: an httpx client, a new
connection and, against a server with CSRF protection (``up``, deployments/scale), a CSRF token
fetched with its first POST, a row the server writes. The receiver handed webhooks to Prefect
through such clients, about one token per webhook (BENCHMARKS.md, "Prefect API requests per
onboarding"). Served inside :func:`sharing_one_client`, every task the server starts runs in one
:class:`prefect.context.AsyncClientContext`, and ``get_client()`` returns its client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import TypeVar

import httpx
from prefect.context import AsyncClientContext
from prefect.settings import PREFECT_API_URL

__all__ = ["sharing_one_client"]

T = TypeVar("T")
logger = logging.getLogger("onboarding.receiver")
OPEN_WITHIN = 10.0  # seconds: past this, serve without a shared client rather than wait


async def sharing_one_client(work: Awaitable[T]) -> T:
    """Await ``work`` (a server's ``serve()``) inside one Prefect client context.

    Tasks inherit the context current when they are created, so the connections a server
    accepts, and the handoffs they start, all see the one client. Its CSRF token is fetched
    here, once: many first POSTs at once through one client would each fetch a token, and each
    new token replaces the last. With Prefect unreachable at the start, ``work`` starts at once
    without one (webhooks must be stored whatever Prefect's state), and each handoff builds its
    own client, as Prefect does by default.
    """
    async with contextlib.AsyncExitStack() as stack:
        if await _answers(PREFECT_API_URL.value()):
            try:
                # asyncio.timeout, not wait_for: the context must be entered in this task.
                async with asyncio.timeout(OPEN_WITHIN):
                    shared = await stack.enter_async_context(AsyncClientContext.get_or_create())
            except Exception as error:
                logger.warning("no shared Prefect client (%s): one per handoff", error)
            else:
                with contextlib.suppress(Exception):  # the handoffs will find out
                    await shared.client.read_flow_runs(limit=1)
        else:
            logger.warning("Prefect does not answer yet: each handoff opens its own client")
        return await work


async def _answers(api_url: str | None) -> bool:
    """True when the Prefect API at ``api_url`` answers its health check now."""
    if not api_url:  # no server named: Prefect would start a temporary one of its own
        return False
    try:
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as http:
            return (await http.get(f"{api_url.rstrip('/')}/health")).status_code == 200
    except httpx.HTTPError:
        return False
