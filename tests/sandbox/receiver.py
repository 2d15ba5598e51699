"""A tiny loopback partner endpoint that records the webhooks the sandbox sends."""

from __future__ import annotations

import threading
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class WebhookReceiver:
    """A tiny partner endpoint that records every JSON body it is sent."""

    def __init__(self) -> None:
        self.url = ""
        self.status_code = 200
        self._bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """A copy of the bodies received so far, oldest first."""
        with self._lock:
            return list(self._bodies)

    def events(self) -> list[str]:
        """The ``event`` names received so far."""
        return [body["event"] for body in self.bodies]

    def clear(self) -> None:
        """Forget what was received; answer 200 again."""
        with self._lock:
            self._bodies.clear()
        self.status_code = 200

    async def _hook(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self._bodies.append(body)
        return JSONResponse({"ok": True}, self.status_code)

    def app(self) -> Starlette:
        """The receiver's ASGI app."""
        return Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
