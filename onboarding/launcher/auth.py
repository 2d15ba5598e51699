"""The Prefect API's credentials: one auth string per ``ONBOARDING_HOME``, and who gets it.

``up`` starts its Prefect server with ``PREFECT_SERVER_API_AUTH_STRING`` (every API request but
``GET /health`` must then carry ``Authorization: Basic base64(<auth string>)``), CSRF protection
on and CORS limited to the UI's own origin. Every client it starts gets the matching
``PREFECT_API_AUTH_STRING``, which Prefect's client sends (and which also makes it fetch CSRF
tokens). The string is generated on first start and kept in ``<home>/prefect-auth-string``
(mode 0600); CLI commands run later with the same ``ONBOARDING_HOME`` and a ``PREFECT_API_URL``
on that local server read it from there (:func:`export_for_local_api`).
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from collections.abc import MutableMapping
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "AUTH_FILE",
    "auth_headers",
    "auth_string_path",
    "ensure_auth_string",
    "export_for_local_api",
    "lock_temporary_server",
    "private_file",
    "read_auth_string",
    "server_security_env",
]

AUTH_FILE = "prefect-auth-string"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def private_file(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` readable by its owner only (0600), directory 0700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # the file may have existed with wider bits
    return path


def auth_string_path(home: Path) -> Path:
    """Where ``up`` keeps the Prefect API auth string for ``home``."""
    return home / AUTH_FILE


def read_auth_string(home: Path) -> str | None:
    """The auth string kept in ``home``, or None when ``up`` never started there."""
    with contextlib.suppress(OSError):
        value = auth_string_path(home).read_text(encoding="utf-8").strip()
        return value or None
    return None


def ensure_auth_string(home: Path) -> str:
    """The auth string kept in ``home``; generated (and written 0600) on first start."""
    existing = read_auth_string(home)
    if existing:
        return existing
    value = secrets.token_urlsafe(32)
    private_file(auth_string_path(home), value + "\n")
    return value


def auth_headers(auth_string: str | None) -> dict[str, str]:
    """The ``Authorization`` header Prefect's server checks (nothing without an auth string)."""
    if not auth_string:
        return {}
    token = base64.b64encode(auth_string.encode("utf-8")).decode("ascii")
    return {"Authorization": f"Basic {token}"}


CSRF_TOKEN_LIFETIME = "P7D"
"""How long a CSRF token lasts, as an ISO 8601 duration (Prefect's default is one hour).

A Prefect client holds one token and fetches a new one when it expires; each fetch replaces the
client's previous token on the server. A worker's runs share one client, so runs that make a
request in the same moment the token expires each fetch one and invalidate the others' (403,
and the run fails when Prefect's single retry races too). Once a week instead of once an hour
makes that moment rare; the API still requires the auth string on every request.
"""


def server_security_env(*, auth_string: str, ui_origin: str) -> dict[str, str]:
    """Prefect server settings: the auth string required, CSRF on, CORS the UI's origin only."""
    return {
        "PREFECT_SERVER_API_AUTH_STRING": auth_string,
        "PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "true",
        "PREFECT_SERVER_CSRF_TOKEN_EXPIRATION": CSRF_TOKEN_LIFETIME,
        "PREFECT_SERVER_CORS_ALLOWED_ORIGINS": ui_origin,
    }


def is_local_api(api_url: str, port: int) -> bool:
    """True when ``api_url`` is the loopback server ``up`` starts on ``port``."""
    try:
        parts = urlsplit(api_url)
        return parts.hostname in LOOPBACK and parts.port == port
    except ValueError:
        return False


def export_for_local_api(env: MutableMapping[str, str]) -> None:
    """Give a CLI command the auth string of the local server ``up`` started, when it uses it.

    Only for a ``PREFECT_API_URL`` on loopback at ``ONBOARDING_PREFECT_PORT``, never for a remote
    API (that would hand our secret to another server), and never over one set explicitly.
    """
    api_url = env.get("PREFECT_API_URL")
    if not api_url or env.get("PREFECT_API_AUTH_STRING"):
        return
    from onboarding.settings import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError:
        return  # the command itself reports the bad setting
    if not is_local_api(api_url, settings.prefect_port):
        return
    value = read_auth_string(settings.home.absolute())
    if value:
        env["PREFECT_API_AUTH_STRING"] = value


def lock_temporary_server(env: MutableMapping[str, str]) -> None:
    """Without ``PREFECT_API_URL``, Prefect runs a temporary server for the command: give it a
    one-off auth string (server and client) so nothing else on the machine can use it meanwhile,
    and no telemetry (unless set): its heartbeat task writes to Prefect's SQLite database as the
    server starts, and printed a "database is locked" traceback into the command's output.

    Call it before Prefect is imported: Prefect reads its settings once, at import.
    """
    if env.get("PREFECT_API_URL") or env.get("PREFECT_SERVER_API_AUTH_STRING"):
        return
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    value = secrets.token_urlsafe(32)
    env["PREFECT_SERVER_API_AUTH_STRING"] = value
    env["PREFECT_API_AUTH_STRING"] = value
