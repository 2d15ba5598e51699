"""Assemble the sandbox: the Partner API at ``/api/v2``, the Messaging API's ``/v1/configs/webhook``
(a channel's own key), the control API at ``/sandbox``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from onboarding.sandbox.control_api import control_routes
from onboarding.sandbox.demo_partner import DemoPartner, demo_partner_routes
from onboarding.sandbox.errors import EXCEPTION_HANDLERS
from onboarding.sandbox.messaging_api import messaging_router
from onboarding.sandbox.models import utcnow
from onboarding.sandbox.partner_api import PartnerGate, partner_router
from onboarding.sandbox.scenarios import SCENARIOS, DemoHook, seed_scenario
from onboarding.sandbox.state import (
    DEFAULT_ADMIN_KEY,
    KEY_SHAPES,
    SANDBOX_PARTNER_ID,
    SandboxState,
)

__all__ = ["API_PREFIX", "MESSAGING_PREFIX", "create_app"]

API_PREFIX = "/api/v2"
MESSAGING_PREFIX = "/v1"  # the Messaging API side: /v1/configs/webhook


def create_app(
    *,
    scenario: str | None = None,
    admin_key: str = DEFAULT_ADMIN_KEY,
    clock: Callable[[], datetime] | None = None,
    webhook_url: str | None = None,
    key_shape: str = "flat",
    on_demo_event: DemoHook | None = None,
    without_status: int = 0,
) -> ASGIApp:
    """A sandbox app; ``app.state.sandbox`` is its :class:`SandboxState`.

    ``scenario`` seeds data at startup (``"demo"``, or ``None``/``"none"`` for only the partners);
    ``clock`` replaces the wall clock for timestamps and token expiry; ``webhook_url`` presets
    the sandbox partner's webhook URL (a reset clears it); ``key_shape`` is how key creation
    answers (``flat``, ``wrapped`` or ``key``; the control API can change it). The demo calls
    ``on_demo_event`` with ``"callback_outage_start"``/``"callback_outage_end"`` when the
    partner's callback should go down and come back (by default the sandbox's own demo partner
    callback at ``/sandbox/demo/callback`` listens);
    ``without_status`` seeds that many channels lacking ``availability_status``.
    """
    if scenario not in (None, *SCENARIOS):
        raise ValueError(f"unknown sandbox scenario {scenario!r} (choose from {SCENARIOS})")
    if key_shape not in KEY_SHAPES:
        raise ValueError(f"unknown key shape {key_shape!r} (choose from {', '.join(KEY_SHAPES)})")
    state = SandboxState(admin_key=admin_key, clock=clock or utcnow, key_shape=key_shape)
    demo_partner = DemoPartner()
    if on_demo_event is None:
        on_demo_event = demo_partner.on_demo_event
    state.partners[SANDBOX_PARTNER_ID].webhook_url = webhook_url

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.webhooks.start()
        seed_scenario(state, scenario, on_demo_event=on_demo_event, without_status=without_status)
        try:
            yield
        finally:
            tasks = list(state.tasks)
            state.cancel_scheduled()
            await asyncio.gather(*tasks, return_exceptions=True)
            await state.webhooks.stop()

    app = Starlette(
        routes=[
            Mount(API_PREFIX, app=PartnerGate(partner_router(), state)),
            Mount(MESSAGING_PREFIX, app=PartnerGate(messaging_router(), state)),
            *control_routes(),
            *demo_partner_routes(demo_partner),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.sandbox = state
    app.state.demo_partner = demo_partner
    return app
