"""What a secret-bearing value looks like wherever it is shown: one module decides.

Everything that prints or logs settings goes through here: ``onboarding config``, ``doctor``,
settings errors, the ``up`` banner, the history database's address in messages, and the log
filter ``up`` installs. Two ways to mask:

* **by shape**, when the value is known to carry a secret: a URL loses its password, query string
  and fragment (:func:`mask_url`); an Apprise URL keeps only its scheme and, for schemes whose host
  is a real host name, that host (:func:`mask_apprise_url`), because many Apprise schemes carry
  tokens where the host or path would be (``slack://TokenA/TokenB/TokenC``); a token keeps its
  first four characters (:func:`mask_token`); anything else secret is ``***``;
* **by value**, for free text that might quote a secret (an error message, a log line):
  :func:`scrub` replaces each known secret (:func:`secret_values`) with ``***``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import SecretStr

__all__ = [
    "MASK",
    "ScrubFilter",
    "mask_apprise_url",
    "mask_apprise_urls",
    "mask_token",
    "mask_url",
    "mask_value",
    "scrub",
    "secret_values",
]

MASK = "***"
# Schemes whose "host" is a real host name; for every other Apprise scheme the host and path
# may be tokens (slack://TokenA/TokenB/TokenC, tgram://bottoken/chat, discord://id/token).
_HOSTNAME_SCHEMES = frozenset(
    {
        "json", "jsons", "xml", "xmls", "form", "forms", "mailto", "mailtos", "ntfy", "ntfys",
        "gotify", "gotifys", "mmost", "mmosts", "apprise", "apprises", "rocket", "rockets",
        "matrix", "matrixs", "ncloud", "nclouds", "nctalk", "nctalks",
    }
)  # fmt: skip
_SHORTEST_SECRET = 4  # shorter fragments would mask ordinary words, not secrets


def mask_token(value: SecretStr | str | None, *, visible: int = 4) -> str:
    """The first ``visible`` characters and ``***`` (``""`` for nothing); enough to tell apart."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not text:
        return ""
    return text[:visible] + MASK if len(text) > 2 * visible else MASK


def _host_port(parts: Any) -> str:
    try:
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def mask_url(url: str) -> str:
    """``url`` without its password, query string and fragment (each shown as ``***``).

    ``postgresql+psycopg://app:pw@db:5432/onboarding`` -> ``postgresql+psycopg://app:***@db:5432/
    onboarding``; ``https://partner.example/cb?token=x`` -> ``https://partner.example/cb?***``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if not parts.scheme or "://" not in url:
        return MASK if url else url
    userinfo = ""
    if "@" in parts.netloc:
        user = parts.username or ""
        userinfo = f"{user}:{MASK}@" if parts.password is not None else f"{user}@"
    path = parts.path
    query = f"?{MASK}" if parts.query else ""
    fragment = f"#{MASK}" if parts.fragment else ""
    return f"{parts.scheme}://{userinfo}{_host_port(parts)}{path}{query}{fragment}"


def mask_apprise_url(url: str) -> str:
    """An Apprise URL as the scheme, the host where it is one, and ``***`` for all the rest.

    ``json://user:pw@hooks.example.com:8443/t/SECRET?x=1`` -> ``json://***@hooks.example.com:8443
    /***?***``; ``slack://TokenA/TokenB/TokenC`` -> ``slack://***``.
    """
    scheme, sep, rest = url.strip().partition("://")
    if not sep or not scheme.replace("+", "").isalnum():
        return MASK
    scheme = scheme.lower()
    if scheme not in _HOSTNAME_SCHEMES:
        return f"{scheme}://{MASK}" if rest else f"{scheme}://"
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return f"{scheme}://{MASK}"
    userinfo = f"{MASK}@" if "@" in parts.netloc else ""
    path = f"/{MASK}" if parts.path.strip("/") else ""
    query = f"?{MASK}" if parts.query else ""
    fragment = f"#{MASK}" if parts.fragment else ""
    return f"{scheme}://{userinfo}{_host_port(parts)}{path}{query}{fragment}"


def mask_apprise_urls(urls: str) -> str:
    """A comma-separated list of Apprise URLs (``ONBOARDING_ALERT_URLS``), each masked."""
    return ", ".join(mask_apprise_url(url) for url in urls.split(",") if url.strip())


def mask_value(name: str, value: object) -> object:
    """A setting's value as it may be shown: secrets ``***``, URLs masked, the rest as it is."""
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if isinstance(value, str) and name.lower().endswith("alert_urls"):
        return mask_apprise_urls(value)
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return value


def _url_secrets(url: str, *, apprise: bool) -> list[str]:
    """The parts of ``url`` that may be secret: password, query values, and for Apprise more."""
    found: list[str] = []
    try:
        parts = urlsplit(url.strip())
        password, username = parts.password, parts.username
    except ValueError:
        return [url] if url else []
    if password:
        found += [password, unquote(password)]
    found += [value for _, value in parse_qsl(parts.query)]
    if parts.query:
        found.append(parts.query)
    if parts.fragment:
        found.append(parts.fragment)
    if apprise:
        if username:
            found += [username, unquote(username)]
        scheme = parts.scheme.lower()
        pieces = re.split(r"[/@:]+", parts.path)
        if scheme not in _HOSTNAME_SCHEMES:
            pieces += re.split(r"[/@:]+", parts.netloc)
        found += pieces
    return found


def _json_values(text: str) -> list[str]:
    """The string values of a secret that is a JSON object (``..._CHANNEL_WEBHOOK_HEADERS``)."""
    if not text.lstrip().startswith("{"):
        return []
    try:
        data = json.loads(text)
    except ValueError:
        return []
    return [v for v in data.values() if isinstance(v, str)] if isinstance(data, dict) else []


def secret_values(*models: Any) -> list[str]:
    """Every secret a settings model holds, as plain strings, longest first (for :func:`scrub`).

    ``SecretStr`` fields whole (and, for a JSON object, each value); from URL-valued fields their
    password and query values; from ``alert_urls`` every part of each Apprise URL that may be a
    token.
    """
    found: set[str] = set()
    for model in models:
        for name in type(model).model_fields:
            value = getattr(model, name, None)
            if isinstance(value, SecretStr):
                found.add(value.get_secret_value())
                found.update(_json_values(value.get_secret_value()))
            elif isinstance(value, str) and name.endswith("alert_urls"):
                for url in value.split(","):
                    found.update(_url_secrets(url, apprise=True))
            elif isinstance(value, str) and "://" in value:
                found.update(_url_secrets(value, apprise=False))
    return sorted((s for s in found if len(s) >= _SHORTEST_SECRET), key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` replaced by ``***`` (pass :func:`secret_values`)."""
    for secret in secrets:
        if secret and len(secret) >= _SHORTEST_SECRET:
            text = text.replace(secret, MASK)
    return text


class ScrubFilter(logging.Filter):
    """A logging filter that masks known secrets in each record's final message."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, scrubbed; drop the traceback text's secrets too."""
        message = record.getMessage()
        record.msg = scrub(message, self._secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, self._secrets)
        return True
