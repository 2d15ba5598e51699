"""What every part shares: settings, the history engine, Partner API clients, the alert service.

Settings are parsed again only when what they are read from changed (the ``ONBOARDING_*`` and
``D360_*`` variables, the ``.env`` file): parsing them on every call was a tenth of the worker's
CPU, and tests change the environment between runs. Engines are cached per database URL because
each owns a connection pool.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import Engine

from onboarding.alerts import AlertService
from onboarding.hub import HubClient
from onboarding.settings import HubSettings, Settings, load_hub_settings, load_settings
from onboarding.store import make_engine

__all__ = [
    "alert_service",
    "engine_for",
    "history_engine",
    "hub_client",
    "hub_settings",
    "partner_id",
    "settings",
]


def _sources() -> tuple[int | None, tuple[tuple[str, str], ...]]:
    """What settings are read from: the ``.env`` file's modification time and our variables."""
    try:
        env_file: int | None = os.stat(".env").st_mtime_ns
    except OSError:
        env_file = None
    ours = tuple(sorted(i for i in os.environ.items() if i[0].startswith(("ONBOARDING_", "D360_"))))
    return env_file, ours


@lru_cache(maxsize=4)
def _settings(_sources: object) -> Settings:
    return load_settings()


@lru_cache(maxsize=4)
def _hub_settings(_sources: object) -> HubSettings:
    hub = load_hub_settings()
    hub.require_credentials()
    return hub


def settings() -> Settings:
    """The orchestrator's settings (``ONBOARDING_*``)."""
    return _settings(_sources())


def hub_settings() -> HubSettings:
    """The Partner API settings (``D360_*``), credentials required."""
    return _hub_settings(_sources())


def partner_id() -> str:
    """The configured partner id."""
    value = hub_settings().partner_id
    assert value is not None  # require_credentials checked it
    return value


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine (and connection pool) per database URL in this process."""
    return make_engine(url)


def history_engine() -> Engine:
    """The engine of the configured history database."""
    return engine_for(settings().database_url)


def hub_client(**overrides: Any) -> HubClient:
    """A Partner API client for one task's work; use it as ``async with hub_client() as hub``."""
    return HubClient.from_settings(hub_settings(), **overrides)


def _emit_event(name: str, payload: dict[str, Any]) -> None:
    """Publish an alert as a Prefect event, for automations to route."""
    from prefect.events import emit_event

    emit_event(
        event=name,
        resource={
            "prefect.resource.id": f"onboarding.alert.{payload.get('dedup_key', 'unknown')}",
            "prefect.resource.name": str(payload.get("kind", "alert")),
        },
        payload=payload,
    )


def alert_service() -> AlertService:
    """The alert service configured from the environment, emitting Prefect events."""
    return AlertService.from_settings(settings(), history_engine(), emit=_emit_event)
