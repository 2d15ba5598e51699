"""Running the receiver: built from :class:`~onboarding.settings.Settings`, served by uvicorn.

``up`` (and the tests) serve it with :func:`serve_config`, which turns uvicorn's access log off:
that log writes every request path, and the path holds the webhook token.
"""

from __future__ import annotations

from typing import Any

import uvicorn
from pydantic import SecretStr
from sqlalchemy import Engine
from starlette.applications import Starlette

from onboarding.receiver.app import create_app
from onboarding.receiver.events import Handoff
from onboarding.receiver.signup import hub_factory, signup_route
from onboarding.settings import ConfigError, Settings, load_hub_settings
from onboarding.store import make_engine

__all__ = ["create_app_from_settings", "serve_config"]


def create_app_from_settings(
    settings: Settings,
    *,
    handoff: Handoff | None,
    engine: Engine | None = None,
    hmac_secret: SecretStr | None = None,
) -> Starlette:
    """The receiver configured from :class:`Settings` (``ONBOARDING_WEBHOOK_*``).

    With Partner API credentials it also serves the signup redirect (``GET /signup/360dialog``),
    which verifies every channel id through the Partner API before it counts. With
    ``ONBOARDING_METRICS=true`` it serves ``GET /metrics`` too (:mod:`onboarding.metrics`).
    """
    if settings.webhook_token is None or not settings.webhook_token.get_secret_value():
        raise ConfigError(
            "ONBOARDING_WEBHOOK_TOKEN is not set: the webhook URL /hooks/360dialog/{token} needs it"
        )
    engine = engine if engine is not None else make_engine(settings.database_url)
    hub = load_hub_settings()
    signup = None
    if hub.has_credentials and hub.partner_id:
        signup = signup_route(
            engine=engine,
            handoff=handoff,
            hub=hub_factory(hub),
            redirect=settings.signup_redirect,
            rate_limit=settings.signup_rate_limit,
            api_budget=settings.signup_api_budget,
            trusted_proxies=settings.trusted_proxy_networks,
        )
    app = create_app(
        engine=engine,
        token=settings.webhook_token,
        handoff=handoff,
        max_bytes=settings.webhook_max_bytes,
        hmac_secret=hmac_secret or settings.webhook_hmac_secret,
        signup=signup,
        handoff_queue=settings.handoff_queue,
        retry_after=settings.replay_after,
    )
    if settings.metrics:
        from onboarding.metrics import add_metrics

        add_metrics(app, engine)
    return app


def serve_config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    """A uvicorn config for the receiver: access log off (it would log the token), proxy
    headers off.

    uvicorn by default believes ``X-Forwarded-For`` from loopback and rewrites the client address
    with it; then anyone on the host could pick the address the signup rate limit keys on. The
    receiver sees the real peer, and the signup route reads ``X-Forwarded-For`` itself, only from
    ``ONBOARDING_TRUSTED_PROXIES``.
    """
    for forced in ("access_log", "proxy_headers", "forwarded_allow_ips"):
        options.pop(forced, None)
    options.setdefault("lifespan", "on")
    return uvicorn.Config(
        app, host=host, port=port, access_log=False, proxy_headers=False, **options
    )
