"""The demo's partner: a completion callback inside the sandbox that can go down on cue.

``up --demo`` points ``ONBOARDING_CALLBACK_URL`` here instead of at the real partner, so the demo
shows keys being delivered, and, while the demo scenario has the callback "down", undelivered
keys being retried with fresh ones. It keeps which key ids arrived, never the keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["DEMO_CALLBACK_PATH", "DemoPartner", "demo_partner_routes"]

DEMO_CALLBACK_PATH = "/sandbox/demo/callback"


@dataclass
class DemoPartner:
    """Whether the demo callback is down, and the key ids it received, by channel."""

    down: bool = False
    received: dict[str, list[str]] = field(default_factory=dict)

    def on_demo_event(self, name: str) -> None:
        """The demo scenario's hook: ``callback_outage_start`` / ``callback_outage_end``."""
        if name == "callback_outage_start":
            self.down = True
        elif name == "callback_outage_end":
            self.down = False

    async def callback(self, request: Request) -> JSONResponse:
        """``POST`` of a completion: 503 while down, else record the key id and say 200."""
        if self.down:
            return JSONResponse({"error": "the demo partner's callback is down"}, 503)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "not JSON"}, 400)
        channel_id = str(body.get("channel_id"))
        self.received.setdefault(channel_id, []).append(str(body.get("api_key_id")))
        return JSONResponse({"ok": True})

    async def status(self, request: Request) -> JSONResponse:
        """``GET``: whether the callback is down and which key ids arrived."""
        return JSONResponse({"down": self.down, "received": self.received})


def demo_partner_routes(partner: DemoPartner) -> list[Route]:
    """The demo partner's callback (``POST``) and its status (``GET``)."""
    return [
        Route(DEMO_CALLBACK_PATH, partner.callback, methods=["POST"]),
        Route(DEMO_CALLBACK_PATH, partner.status, methods=["GET"]),
    ]
