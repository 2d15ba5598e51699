"""A distinct secret planted in every setting that can carry one, and a search for them.

Each secret is its own marker string, so a hit names the setting that leaked. URLs carry theirs
where a real one would: a password in the database URL, a token in the callback URL's query,
user, password, path token and query token in an Apprise URL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

__all__ = ["Planted", "Recorder", "leaks", "plant"]

API_KEY = "pl4nted-d360-api-key"
PASSWORD = "pl4nted-d360-password"
DB_PASSWORD = "pl4nted-db-password"
CALLBACK_QUERY = "pl4nted-callback-query-token"
CALLBACK_SECRET = "pl4nted-callback-secret"
ALERT_USER = "pl4nted-alert-user"
ALERT_PASSWORD = "pl4nted-alert-password"
ALERT_PATH = "pl4nted-alert-path-token"
ALERT_QUERY = "pl4nted-alert-query-token"
FORM_PATH = "pl4nted-form-path-token"
WEBHOOK_TOKEN = "pl4nted-webhook-token-0123"
HMAC_SECRET = "pl4nted-hmac-secret"


@dataclass
class Planted:
    """The environment to run with, and every secret it holds."""

    env: dict[str, str]
    secrets: list[str]


def plant(*, sink_url: str, database_url: str, hmac: bool = True) -> Planted:
    """Settings with a secret in each: Partner API key, database password, callback, alerts,
    webhook token and (with ``hmac``) the webhook HMAC secret. Callback and alerts go to
    ``sink_url`` (a :class:`Recorder`), the database is ``database_url`` given a password."""
    host = sink_url.removeprefix("http://")
    db_url = make_url(database_url).set(password=DB_PASSWORD)
    env = {
        "D360_API_KEY": API_KEY,
        "D360_PARTNER_ID": "planted-partner",
        "ONBOARDING_DATABASE_URL": db_url.render_as_string(hide_password=False),
        "ONBOARDING_CALLBACK_URL": f"{sink_url}/callback?token={CALLBACK_QUERY}",
        "ONBOARDING_CALLBACK_SECRET": CALLBACK_SECRET,
        "ONBOARDING_ALERT_URLS": (
            f"json://{ALERT_USER}:{ALERT_PASSWORD}@{host}/alerts/{ALERT_PATH}"
            f"?token={ALERT_QUERY},form://{host}/form/{FORM_PATH}"
        ),
        "ONBOARDING_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
    }
    secrets = [
        API_KEY,
        DB_PASSWORD,
        CALLBACK_QUERY,
        CALLBACK_SECRET,
        ALERT_USER,
        ALERT_PASSWORD,
        ALERT_PATH,
        ALERT_QUERY,
        FORM_PATH,
        WEBHOOK_TOKEN,
    ]
    if hmac:
        env["ONBOARDING_WEBHOOK_HMAC_SECRET"] = HMAC_SECRET
        secrets.append(HMAC_SECRET)
    return Planted(env, secrets)


def leaks(text: str, secrets: Iterable[str]) -> list[str]:
    """The secrets that appear in ``text`` (empty when none does)."""
    return [secret for secret in secrets if secret in text]


@dataclass
class Recorder:
    """A loopback HTTP server's memory of every request it got (method and path)."""

    requests: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def _record(self, request: Request) -> PlainTextResponse:
        with self._lock:
            self.requests.append(f"{request.method} {request.url.path}")
        return PlainTextResponse("ok")

    def app(self) -> Starlette:
        """An app that answers every method on every path, recording it."""
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", self._record, methods=methods)])
