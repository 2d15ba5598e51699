"""The partner's completion callback: a signed JSON POST once a channel is onboarded.

The body carries the channel's Messaging API key, so it never appears in a log line, an exception
message or an exception's chained cause.

The signature covers the time and the body: ``X-Onboarding-Signature: t=<unix>,v1=<hex>`` where
``hex`` is HMAC-SHA256 with the callback secret over ``"<t>.<raw body>"``. A receiver recomputes
it over the exact bytes it got and refuses a ``t`` older than a few minutes (a replayed request):
:func:`verify` does both. ``X-Onboarding-Timestamp`` repeats ``t`` for receivers that log it.

Errors::

    CallbackError            non-2xx answer or no answer at all; .url, .status_code, .retryable
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import SecretStr

__all__ = [
    "DEFAULT_TOLERANCE",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "CallbackError",
    "deliver_completion",
    "encode_payload",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "X-Onboarding-Signature"
TIMESTAMP_HEADER = "X-Onboarding-Timestamp"
DEFAULT_TOLERANCE = 300.0  # seconds a signature stays acceptable (clock skew plus transit)


class CallbackError(Exception):
    """The completion callback was not accepted; the message names the URL, never the payload.

    ``retryable`` is True for network failures, 408, 429 and 5xx (a later attempt may succeed),
    False for other answers (the partner's endpoint or our configuration must change first).
    """

    def __init__(self, message: str, *, url: str, status_code: int | None, retryable: bool):
        super().__init__(message)
        self.url = url
        self.status_code = status_code
        self.retryable = retryable

    def __reduce__(self) -> tuple[Any, ...]:
        # Prefect pickles a failed task's exception; the keyword-only __init__ needs this.
        return (_rebuild_callback_error, (str(self), self.url, self.status_code, self.retryable))


def _rebuild_callback_error(
    message: str, url: str, status_code: int | None, retryable: bool
) -> CallbackError:
    return CallbackError(message, url=url, status_code=status_code, retryable=retryable)


def _digest(body: bytes, timestamp: int, secret: SecretStr) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.get_secret_value().encode(), message, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: SecretStr, *, timestamp: int | None = None) -> str:
    """The ``X-Onboarding-Signature`` value for ``body`` sent at ``timestamp`` (now if None)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(body, t, secret)}"


def _parse(header: str) -> tuple[int | None, list[str]]:
    """``t`` and every ``v1`` value of a signature header (unknown parts ignored)."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value.strip().lower())
    return timestamp, candidates


def verify(
    body: bytes,
    signature: str,
    secret: SecretStr,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """True when ``signature`` signs ``body`` with ``secret`` and its ``t`` is recent.

    ``t`` may be at most ``tolerance`` seconds away from ``now`` (either way, for clock skew);
    the HMAC is compared in constant time.
    """
    timestamp, candidates = _parse(signature)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = _digest(body, timestamp, secret).encode()
    return any(hmac.compare_digest(expected, candidate.encode()) for candidate in candidates)


def _public_url(url: str) -> str:
    """``url`` without user info, query or fragment, which may carry a token of the partner's."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "<unparseable URL>"


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes that are signed and sent: compact JSON, keys sorted."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


async def deliver_completion(
    http: httpx.AsyncClient,
    *,
    url: str,
    secret: SecretStr,
    payload: Mapping[str, Any],
) -> int:
    """POST ``payload`` as signed JSON to ``url``; return the 2xx status code.

    Raises :class:`CallbackError` on any other status or when no answer arrives. The error is
    not chained to httpx's exception: that holds the request, which holds the body with the key.
    """
    body = encode_payload(payload)
    sent_at = int(time.time())
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(body, secret, timestamp=sent_at),
        TIMESTAMP_HEADER: str(sent_at),
    }
    shown = _public_url(url)
    reason: str | None = None
    try:
        response = await http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        reason = f"{type(exc).__name__}: {exc}".replace(url, shown)
    if reason is not None:
        # Raised outside the except block so not even __context__ links to httpx's request.
        raise CallbackError(
            f"completion callback to {shown} got no answer ({reason})",
            url=shown,
            status_code=None,
            retryable=True,
        )
    if not response.is_success:
        status = response.status_code
        raise CallbackError(
            f"completion callback to {shown} answered HTTP {status}",
            url=shown,
            status_code=status,
            retryable=status in {408, 429} or status >= 500,
        )
    return response.status_code
