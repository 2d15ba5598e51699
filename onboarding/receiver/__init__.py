"""The partner-webhook receiver (ASGI): inbox first, answer fast, hand on to Prefect after.

This package is core: it never imports Prefect, ``flows`` or ``tasks``. Prefect is reached
through an injected :data:`Handoff` (``onboarding.orchestration.webhooks`` gives the real one)::

    app = create_app_from_settings(load_settings(), handoff=handoff)
    uvicorn.Server(serve_config(app, settings.receiver_host, settings.receiver_port)).run()

Always serve it with :func:`serve_config`: the URL path holds the secret token, and uvicorn's
access log (which :func:`serve_config` turns off) would write it to the log.

Modules: ``events`` (envelope parsing, :class:`HandoffEvent`), ``app`` (the endpoints),
``handling`` (inbox writes and the hand-off), ``replay`` (:func:`replay_unhandled`), ``serving``
(:func:`create_app_from_settings`, :func:`serve_config`).
"""

from __future__ import annotations

from onboarding.receiver.app import HOOK_PATH, SIGNATURE_HEADER, create_app
from onboarding.receiver.events import (
    KNOWN_EVENTS,
    Handoff,
    HandoffEvent,
    InvalidEvent,
    ParsedEvent,
    is_known_event,
    parse_event,
)
from onboarding.receiver.replay import ReplayReport, replay_unhandled
from onboarding.receiver.serving import create_app_from_settings, serve_config

__all__ = [
    "HOOK_PATH",
    "KNOWN_EVENTS",
    "SIGNATURE_HEADER",
    "Handoff",
    "HandoffEvent",
    "InvalidEvent",
    "ParsedEvent",
    "ReplayReport",
    "create_app",
    "create_app_from_settings",
    "is_known_event",
    "parse_event",
    "replay_unhandled",
    "serve_config",
]
