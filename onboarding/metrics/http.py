"""``GET /metrics`` on the receiver and the webhook handling latency it measures.

:func:`add_metrics` adds both to a receiver app: the route (Prometheus text format, built in a
worker thread because the history is read) and :class:`WebhookTiming`, an ASGI middleware that
times each ``POST /hooks/360dialog/...`` from its arrival to the last byte of its answer (the
handoff that runs after the answer is not counted), labelled by the HTTP status only. Each app
has its own registry, so two receivers in one process (the tests) never share a series.
"""

from __future__ import annotations

import time
from typing import Any

from anyio import to_thread
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onboarding.metrics.history import HistoryCollector

__all__ = ["METRICS_PATH", "WebhookTiming", "add_metrics", "metrics_registry"]

METRICS_PATH = "/metrics"
HOOK_PREFIX = "/hooks/360dialog/"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def metrics_registry(engine: Engine) -> tuple[CollectorRegistry, Histogram]:
    """A registry holding the history collector and the webhook latency histogram."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HistoryCollector(engine))
    latency = Histogram(
        "onboarding_webhook_handling_seconds",
        "Seconds the receiver took to answer a partner webhook delivery, by HTTP status.",
        labelnames=["status"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    return registry, latency


class WebhookTiming:
    """ASGI middleware: observe the answer time of every partner-webhook delivery."""

    def __init__(self, app: ASGIApp, *, latency: Histogram) -> None:
        self.app = app
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass everything on; time hook POSTs until their last body chunk is sent."""
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path.startswith(HOOK_PREFIX) and scope.get("method") == "POST"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500, "done": False}

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)
            last = message["type"] == "http.response.body" and not message.get("more_body")
            if last and not status["done"]:
                status["done"] = True
                elapsed = time.perf_counter() - started
                self.latency.labels(status=str(status["code"])).observe(elapsed)

        await self.app(scope, receive, timed_send)


def add_metrics(app: Starlette, engine: Engine) -> CollectorRegistry:
    """Serve ``GET /metrics`` on ``app`` and time its webhook deliveries; the registry."""
    registry, latency = metrics_registry(engine)

    async def metrics(_request: Request) -> Response:
        body = await to_thread.run_sync(lambda: generate_latest(registry))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.router.routes.append(Route(METRICS_PATH, metrics, methods=["GET"]))
    app.add_middleware(WebhookTiming, latency=latency)
    app.state.metrics = registry
    return registry
