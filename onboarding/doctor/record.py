"""`onboarding doctor --record DIR`: keep one redacted answer of each Partner API call.

A partner whose account answers differently from our models can send us these files instead of
describing the difference. Each call becomes ``NN-METHOD-path.json``::

    {"method", "path", "query", "status", "headers", "body"}

What is kept and what is masked:

* ids (channel, client, partner, WABA ids) and every field name: kept, they are what we need;
* secrets: any field whose name says key, token, password, secret or authorization, any header
  that could carry a credential, and any string equal to one of the configured secrets -> ``***``;
* phone numbers: fields named ``*phone*`` and any string that looks like one -> last 4 digits;
* e-mail addresses -> ``***@domain``; URLs -> scheme and host only (a webhook URL's path holds
  the receiver's token).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from onboarding.text import mask_phone

__all__ = ["RecordingTransport", "redact"]

MASK = "***"
_SECRET_NAME = re.compile(r"key|token|password|passwd|secret|authori[sz]ation|cookie", re.I)
_PHONE_NAME = re.compile(r"phone", re.I)
_PHONE_VALUE = re.compile(r"^\+?[\d][\d\s().-]{5,}\d$")
_EMAIL = re.compile(r"^[^@\s]+@([^@\s]+)$")
_URL = re.compile(r"^(https?://[^/?#\s]+)[/?#].*$", re.I)
_DIGIT_RUN = re.compile(r"\+?\d[\d\s().-]{6,}\d")
_TEXT_LIMIT = 2000
# Header names we keep as they are: they say how the server answered, never who we are.
_SAFE_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "date",
        "server",
        "retry-after",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-request-id",
        "cache-control",
        "vary",
    }
)


def _looks_like_phone(text: str) -> bool:
    return bool(_PHONE_VALUE.match(text)) and sum(ch.isdigit() for ch in text) >= 7


def _redact_text(text: str, secrets: tuple[str, ...]) -> str:
    """One string value: secrets, phone numbers, e-mails and URL paths masked."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    if _looks_like_phone(text):
        return mask_phone(text)
    if email := _EMAIL.match(text):
        return f"{MASK}@{email.group(1)}"
    if url := _URL.match(text):
        return f"{url.group(1)}/{MASK}"
    return text


def redact(value: Any, secrets: Iterable[str] = (), *, name: str = "") -> Any:
    """``value`` (decoded JSON) with secrets and personal data masked, structure and ids kept."""
    known = tuple(secret for secret in secrets if secret)
    if isinstance(value, dict):
        return {key: redact(item, known, name=str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item, known, name=name) for item in value]
    if value is None or isinstance(value, bool):
        return value
    if _SECRET_NAME.search(name):
        return MASK
    if name == "id" or name.endswith("_id"):
        return value  # ids are what we need to match answers with objects (WABA ids are digits)
    if _PHONE_NAME.search(name):
        return mask_phone(str(value))
    if isinstance(value, str):
        return _redact_text(value, known)
    return value


def _redact_raw_text(text: str, secrets: tuple[str, ...]) -> str:
    """A body that is not JSON: cut short, secrets and digit runs (phone numbers) masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    text = _DIGIT_RUN.sub(lambda match: mask_phone(match.group(0)), text)
    return text[:_TEXT_LIMIT] + ("..." if len(text) > _TEXT_LIMIT else "")


def _headers(headers: httpx.Headers) -> dict[str, str]:
    return {
        name.lower(): (value if name.lower() in _SAFE_HEADERS else MASK)
        for name, value in headers.items()
    }


def _slug(method: str, path: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-")[:80] or "root"
    return f"{method.upper()}-{cleaned}"


class RecordingTransport(httpx.AsyncBaseTransport):
    """Pass every request on; write its answer, redacted, to ``directory`` (one file each)."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, directory: Path, *, secrets: Iterable[str] = ()
    ) -> None:
        self._inner = inner
        self._directory = directory
        self._secrets = tuple(secret for secret in secrets if secret)
        self.files: list[Path] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; record the answer; hand it back unchanged."""
        response = await self._inner.handle_async_request(request)
        body = await response.aread()
        self._write(request, response.status_code, response.headers, body)
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )

    def _write(
        self, request: httpx.Request, status: int, headers: httpx.Headers, body: bytes
    ) -> None:
        try:
            decoded: Any = redact(json.loads(body), self._secrets) if body else None
        except ValueError:
            decoded = _redact_raw_text(body.decode("utf-8", "replace"), self._secrets)
        query = {
            key: redact(value, self._secrets, name=key) for key, value in request.url.params.items()
        }
        record = {
            "method": request.method,
            "path": request.url.path,
            "query": query,
            "status": status,
            "headers": _headers(headers),
            "body": decoded,
        }
        self._directory.mkdir(parents=True, exist_ok=True)
        number = len(self.files) + 1
        path = self._directory / f"{number:02d}-{_slug(request.method, request.url.path)}.json"
        path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        self.files.append(path)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()
