"""The number's own webhook on the Messaging API: where its messages and statuses are delivered.

Right after a channel's key is created, ``POST {address}/v1/configs/webhook`` with header
``D360-API-KEY: <the channel's key>`` and the JSON body ``{"url": ..., "headers": {...}}`` sets
where 360dialog delivers the number's own events. ``address`` comes with the key (the Partner API's
key answer), normally ``https://waba-v2.360dialog.io``.

The URL is ``ONBOARDING_CHANNEL_WEBHOOK_URL``, a template whose ``{channel_id}`` and
``{client_id}`` are filled in URL-encoded; the headers (``ONBOARDING_CHANNEL_WEBHOOK_HEADERS``, a
JSON object) are a secret of the partner's. Neither the key nor a header value ever appears in a
message of this module.

Errors::

    ChannelWebhookError   non-2xx answer or no answer at all; .status_code, .retryable
"""

from __future__ import annotations

import json
import string
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from pydantic import SecretStr

from onboarding.redact import mask_url

__all__ = [
    "API_KEY_HEADER",
    "DEFAULT_MESSAGING_ADDRESS",
    "WEBHOOK_PATH",
    "ChannelWebhookError",
    "check_template",
    "fill_template",
    "messaging_address",
    "parse_headers",
    "set_channel_webhook",
]

DEFAULT_MESSAGING_ADDRESS = "https://waba-v2.360dialog.io"
WEBHOOK_PATH = "/v1/configs/webhook"
API_KEY_HEADER = "D360-API-KEY"
_FIELDS = frozenset({"channel_id", "client_id"})


class ChannelWebhookError(Exception):
    """The Messaging API did not set the number's webhook; the message holds no secret.

    ``retryable`` is True for no answer, 408, 429 and 5xx; False for other answers (the key,
    the URL or the headers must change first).
    """

    def __init__(self, message: str, *, status_code: int | None, retryable: bool) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retryable = retryable

    def __reduce__(self) -> tuple[Any, ...]:
        # Prefect pickles a failed task's exception; the keyword-only __init__ needs this.
        return (_rebuild, (str(self), self.status_code, self.retryable))


def _rebuild(message: str, status_code: int | None, retryable: bool) -> ChannelWebhookError:
    return ChannelWebhookError(message, status_code=status_code, retryable=retryable)


def check_template(template: str) -> str:
    """``template`` if it is an http(s) URL whose only fields are ``{channel_id}``/``{client_id}``.

    Raises :class:`ValueError` naming the problem (never the value).
    """
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError:
        raise ValueError("is not a valid template (unbalanced { or })") from None
    unknown = names - _FIELDS
    if unknown or "" in names:
        raise ValueError("may only use the fields {channel_id} and {client_id}")
    sample = fill_template(template, channel_id="c", client_id="k")
    parts = urlsplit(sample)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    return template


def fill_template(template: str, *, channel_id: str, client_id: str | None) -> str:
    """The template with ``{channel_id}`` and ``{client_id}`` filled in, URL-encoded."""
    return template.format(
        channel_id=quote(channel_id, safe=""), client_id=quote(client_id or "", safe="")
    )


def parse_headers(value: SecretStr | None) -> dict[str, str]:
    """``ONBOARDING_CHANNEL_WEBHOOK_HEADERS`` as a dict of strings (empty when unset).

    Raises :class:`ValueError` for anything but a JSON object of strings; the message never
    quotes the text, which is secret.
    """
    if value is None or not value.get_secret_value().strip():
        return {}
    try:
        data = json.loads(value.get_secret_value())
    except ValueError:
        raise ValueError('must be a JSON object, like {"Authorization": "Basic ..."}') from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in data.items()
    ):
        raise ValueError("must be a JSON object of header names to string values")
    return dict(data)


def messaging_address(address: str | None) -> str:
    """Where to send the channel's key: the key answer's ``address``, or the documented default.

    Refuses (:class:`ChannelWebhookError`) an address that would carry the key in clear text
    beyond this machine.
    """
    base = (address or DEFAULT_MESSAGING_ADDRESS).strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme == "https" and parts.hostname:
        return base
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        return base
    raise ChannelWebhookError(
        f"the key answer's address {mask_url(base)!r} is not https: the key is not sent there",
        status_code=None,
        retryable=False,
    )


async def set_channel_webhook(
    http: httpx.AsyncClient,
    *,
    address: str | None,
    api_key: SecretStr,
    url: str,
    headers: dict[str, str],
) -> int:
    """``POST {address}/v1/configs/webhook`` with the channel's key; return the 2xx status.

    Raises :class:`ChannelWebhookError` on any other answer or none. The error is not chained
    to httpx's exception, whose request holds the key header.
    """
    base = messaging_address(address)
    target = base + WEBHOOK_PATH
    body: dict[str, Any] = {"url": url}
    if headers:
        body["headers"] = headers
    reason: str | None = None
    try:
        response = await http.post(
            target, json=body, headers={API_KEY_HEADER: api_key.get_secret_value()}
        )
    except httpx.HTTPError as exc:
        reason = type(exc).__name__
    if reason is not None:
        raise ChannelWebhookError(
            f"the Messaging API at {mask_url(base)} got no answer ({reason})",
            status_code=None,
            retryable=True,
        )
    if not response.is_success:
        status = response.status_code
        raise ChannelWebhookError(
            f"the Messaging API at {mask_url(base)} answered HTTP {status} to {WEBHOOK_PATH}",
            status_code=status,
            retryable=status in {408, 429} or status >= 500,
        )
    return response.status_code
