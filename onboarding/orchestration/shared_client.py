"""One Prefect client for everything a webhook-serving process hands to Prefect.

Outside a flow run, each ``get_client()`` builds a client of its own: an httpx client, a new
connection and, against a server with CSRF protection (``up``, deployments/scale), a CSRF token
fetched with its first POST, a row the server writes. The receiver handed webhooks to Prefect
through such clients, about one token per webhook (BENCHMARKS.md, "Prefect API requests per
onboarding"). Served inside :func:`sharing_one_client`, every task the server starts runs in one
:class:`prefect.context.AsyncClientContext`, and ``get_client()`` returns its client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from prefect.context import AsyncClientContext

__all__ = ["sharing_one_client"]

T = TypeVar("T")


async def sharing_one_client(work: Awaitable[T]) -> T:
    """Await ``work`` (a server's ``serve()``) inside one Prefect client context.

    Tasks inherit the context current when they are created, so the connections a server
    accepts, and the handoffs they start, all see the one client. Its CSRF token is fetched
    here, once: many first POSTs at once through one client would each fetch a token, and each
    new token replaces the last.
    """
    async with AsyncClientContext.get_or_create() as shared:
        with contextlib.suppress(Exception):  # Prefect may be down yet: handoffs will find out
            await shared.client.read_flow_runs(limit=1)
        return await work
