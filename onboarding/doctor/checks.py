"""The doctor's local checks: settings, history DB, inbox event names, Prefect, alert sinks."""

from __future__ import annotations

import os
from collections import Counter

import httpx

from onboarding.doctor.result import Check
from onboarding.settings import (
    ConfigError,
    HubSettings,
    Settings,
    load_hub_settings,
    load_settings,
)

__all__ = [
    "check_alert_sinks",
    "check_database",
    "check_event_names",
    "check_prefect",
    "check_settings",
]


def check_settings() -> tuple[Check, Settings | None, HubSettings | None]:
    """Load both settings groups; a problem names the variable to fix."""
    try:
        settings = load_settings()
        hub = load_hub_settings()
    except ConfigError as exc:
        fix = "fix the variable named above (environment or .env); `onboarding config` lists all"
        return Check.fail("settings", str(exc), fix), None, None
    mode = "Partner API credentials set" if hub.has_credentials else "no Partner API credentials"
    return Check.ok("settings", f"ONBOARDING_* and D360_* read ({mode})"), settings, hub


def check_database(settings: Settings) -> Check:
    """The history database answers and is migrated to the newest revision."""
    from onboarding.store import (
        StoreError,
        check_connection,
        current_revision,
        head_revision,
        make_engine,
        masked_url,
    )
    from onboarding.store.readiness import sqlite_path

    url = settings.database_url
    label = masked_url(url)
    path = sqlite_path(url)
    if path is not None and not path.is_file():  # checking must not create it
        return Check.fail(
            "history database", f"{label}: does not exist", "run `onboarding db upgrade`"
        )
    try:
        engine = make_engine(url)
        try:
            check_connection(engine)
        finally:
            engine.dispose()
        revision = current_revision(url)
    except StoreError as exc:
        return Check.fail("history database", str(exc), "check ONBOARDING_DATABASE_URL")
    head = head_revision()
    if revision is None:
        return Check.fail(
            "history database", f"{label}: not migrated", "run `onboarding db upgrade`"
        )
    if revision != head:
        return Check.fail(
            "history database",
            f"{label}: at revision {revision}, this version needs {head}",
            "run `onboarding db upgrade` (or upgrade onboarding if the database is newer)",
        )
    return Check.ok("history database", f"{label}: reachable, at head ({head})")


def check_event_names(settings: Settings) -> Check:
    """Partner webhook event names in the inbox that we have never heard of."""
    from sqlmodel import col, func, select

    from onboarding.receiver import is_known_event
    from onboarding.store import InboundEvent, make_engine, session_scope

    try:
        engine = make_engine(settings.database_url)
        try:
            with session_scope(engine) as session:
                rows = session.exec(
                    select(InboundEvent.event_type, func.count())
                    .where(col(InboundEvent.event_type).is_not(None))
                    .group_by(InboundEvent.event_type)
                ).all()
        finally:
            engine.dispose()
    except Exception as exc:  # a missing table or a dead server: the database check says more
        return Check.warn("webhook event names", f"inbox not readable ({type(exc).__name__})")
    unknown = Counter({name: count for name, count in rows if name and not is_known_event(name)})
    if unknown:
        details = [f"{name} ({count})" for name, count in sorted(unknown.items())]
        return Check.warn(
            "webhook event names",
            f"{len(unknown)} event name(s) in the inbox we do not know",
            "please report these names with your issue",
            details=details,
        )
    return Check.ok("webhook event names", f"{sum(c for _, c in rows)} event(s), all names known")


def prefect_api_url() -> str | None:
    """PREFECT_API_URL from the environment or Prefect's own settings, if set."""
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return url
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def check_prefect(url: str | None) -> Check:
    """The Prefect API answers its health endpoint."""
    if not url:
        return Check.warn(
            "Prefect API",
            "PREFECT_API_URL is not set",
            "`onboarding up` starts a local Prefect server; or set PREFECT_API_URL",
        )
    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=5.0)
    except httpx.HTTPError as exc:
        return Check.fail(
            "Prefect API",
            f"{url} is unreachable ({type(exc).__name__})",
            "start it (`onboarding up` or `prefect server start`) or fix PREFECT_API_URL",
        )
    if response.status_code != 200:
        return Check.fail(
            "Prefect API",
            f"{url}/health answered HTTP {response.status_code}",
            "is PREFECT_API_URL the API (ending in /api)?",
        )
    return Check.ok("Prefect API", f"{url}: healthy")


def check_alert_sinks(settings: Settings, *, send: bool = True) -> list[Check]:
    """Send a test notice to every configured sink (one check per sink)."""
    from onboarding.alerts import Message, Notifier

    urls = settings.alert_url_list
    if not urls:
        return [
            Check.warn(
                "alert sinks",
                "no alert sink configured: alerts are only recorded",
                "set ONBOARDING_ALERT_URLS (Apprise URLs: slack://, mailto://, json://, ...)",
            )
        ]
    notifier = Notifier(urls)
    if not send:
        return [Check.ok("alert sinks", f"{len(urls)} sink(s) configured, not tested (--no-send)")]
    message = Message(
        title="onboarding doctor: test notice",
        body="This is a test notice from `onboarding doctor`. Nothing is wrong.",
    )
    checks = []
    for result in notifier.send_all(message, notify_type="info"):
        name = f"alert sink {result.sink} #{result.fingerprint}"
        if result.ok:
            checks.append(Check.ok(name, "test notice delivered"))
        else:
            checks.append(
                Check.fail(
                    name,
                    result.error or "not delivered",
                    "check this URL in ONBOARDING_ALERT_URLS",
                )
            )
    return checks
