"""Partner webhook envelopes: what a valid one looks like and what is handed to Prefect.

360dialog sends ``{"event": "<name>", "data": {...}}`` with ``data`` usually the Channel or Client
object. Ids are read leniently because the exact ``data`` fields are not published:

* channel events (``channel_*``): channel id from ``data.id`` or ``data.channel_id``;
* client events (``client_*``): client id from ``data.id``;
* any event: client id from ``data.client_id`` or ``data.client.id``, channel id from
  ``data.channel_id``.

Ids that are not a string or an integer, or are longer than the inbox columns hold, are left
``None`` (the full ``data`` is kept in the inbox and handed on all the same).

What is handed on is fit for the history whatever the sender put in it: NUL characters and lone
surrogates (``\\u0000``, ``\\ud800`` in the JSON) are taken out of every string, keys included,
and ``availability_status`` / ``status`` are cut to the history's column sizes. The inbox keeps
the body exactly as it came.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from onboarding.lifecycle.events import EVENT_MEANINGS
from onboarding.lifecycle.events import is_known_event as lifecycle_knows
from onboarding.store.inbox import clean_text
from onboarding.store.models import StatusObservation

__all__ = [
    "KNOWN_EVENTS",
    "Handoff",
    "HandoffEvent",
    "InvalidEvent",
    "ParsedEvent",
    "is_known_event",
    "parse_event",
]

KNOWN_EVENTS: frozenset[str] = frozenset(EVENT_MEANINGS)
"""Event names 360dialog is known to send (the lifecycle's event table)."""

MAX_NAME_LENGTH = 64  # the inbox's event_type column
MAX_ID_LENGTH = 64  # the inbox's channel_id / client_id columns
_STATUS_COLUMNS = {
    name: getattr(StatusObservation.__table__.c[name].type, "length", None)  # type: ignore[attr-defined]
    for name in ("availability_status", "status")
}


@dataclass(frozen=True)
class HandoffEvent:
    """An accepted event, as stored in the inbox, ready for Prefect."""

    inbox_id: int
    event_type: str
    channel_id: str | None
    client_id: str | None
    data: dict[str, Any]


Handoff = Callable[[HandoffEvent], Awaitable[str]]
"""Hands an event to Prefect; returns ``"handled"`` or ``"ignored"``, raises when it fails."""


@dataclass(frozen=True)
class ParsedEvent:
    """A well-formed envelope before it has an inbox id."""

    event_type: str
    channel_id: str | None
    client_id: str | None
    data: dict[str, Any]

    @property
    def known(self) -> bool:
        """True when the event name is one 360dialog is known to send."""
        return is_known_event(self.event_type)

    def with_inbox_id(self, inbox_id: int) -> HandoffEvent:
        """The event as handed to Prefect, naming its inbox row."""
        return HandoffEvent(
            inbox_id=inbox_id,
            event_type=self.event_type,
            channel_id=self.channel_id,
            client_id=self.client_id,
            data=self.data,
        )


class InvalidEvent(ValueError):
    """The body is not a partner webhook envelope; the message says what is wrong."""


def is_known_event(name: str) -> bool:
    """True for the lifecycle's known events and the receiver's own ``signup_redirect``."""
    return name == "signup_redirect" or lifecycle_knows(name)


def _id(value: Any) -> str | None:
    """``value`` as an id string, or ``None`` when it cannot be one."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = clean_text(str(value)).strip()
    return text if 0 < len(text) <= MAX_ID_LENGTH else None


def _first_id(*values: Any) -> str | None:
    for value in values:
        found = _id(value)
        if found is not None:
            return found
    return None


def _ids(event_type: str, data: dict[str, Any]) -> tuple[str | None, str | None]:
    """``(channel_id, client_id)`` read from ``data`` the lenient way the module describes."""
    client = data.get("client")
    nested_client_id = client.get("id") if isinstance(client, dict) else None
    if event_type.startswith("channel_"):
        channel_id = _first_id(data.get("id"), data.get("channel_id"))
        client_id = _first_id(data.get("client_id"), nested_client_id)
    elif event_type.startswith("client_"):
        channel_id = _first_id(data.get("channel_id"))
        client_id = _first_id(data.get("id"), data.get("client_id"), nested_client_id)
    else:
        channel_id = _first_id(data.get("channel_id"))
        client_id = _first_id(data.get("client_id"), nested_client_id)
    return channel_id, client_id


def _kind(value: Any) -> str:
    """The JSON name of ``value``'s type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _clean(root: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``root`` with every string cleaned (:func:`clean_text`); iterative, any depth."""
    out: dict[str, Any] = {}
    stack: list[tuple[Any, Any]] = [(root, out)]
    while stack:
        source, target = stack.pop()
        pairs = source.items() if isinstance(source, dict) else enumerate(source)
        for key, value in pairs:
            if isinstance(value, dict):
                copy: Any = {}
                stack.append((value, copy))
            elif isinstance(value, list):
                copy = []
                stack.append((value, copy))
            else:
                copy = clean_text(value) if isinstance(value, str) else value
            if isinstance(target, dict):
                target[clean_text(key)] = copy
            else:
                target.append(copy)
    return out


def _fit(data: dict[str, Any], text: str) -> dict[str, Any]:
    """``data`` made safe for the history, as the module describes."""
    if "\\u" in text:  # NUL and surrogates can only arrive as \u escapes in valid JSON
        data = _clean(data)
    for name, limit in _STATUS_COLUMNS.items():
        value = data.get(name)
        if isinstance(value, str) and limit is not None and len(value) > limit:
            data = {**data, name: value[:limit]}
    return data


def parse_event(body: bytes | str) -> ParsedEvent:
    """Validate a webhook body and read its ids; :class:`InvalidEvent` says what is wrong."""
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidEvent(
                f"body is not UTF-8 text (bad byte at offset {error.start})"
            ) from None
    else:
        text = body
    try:
        envelope = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidEvent(f"body is not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidEvent("body is not valid JSON: nested too deeply") from None
    except ValueError:  # an integer with more digits than Python converts
        raise InvalidEvent(
            f"body has a number longer than {sys.get_int_max_str_digits()} digits"
        ) from None
    if not isinstance(envelope, dict):
        raise InvalidEvent(
            f'body must be a JSON object {{"event": ..., "data": {{...}}}}, got {_kind(envelope)}'
        )
    event_type = envelope.get("event")
    if "event" not in envelope:
        raise InvalidEvent('"event" is missing (expected the event name, e.g. "channel_created")')
    if isinstance(event_type, str):
        event_type = clean_text(event_type)
    if not isinstance(event_type, str) or not event_type.strip():
        raise InvalidEvent(f'"event" must be a non-empty string, got {_kind(event_type)}')
    if len(event_type) > MAX_NAME_LENGTH:
        raise InvalidEvent(f'"event" is longer than {MAX_NAME_LENGTH} characters')
    if "data" not in envelope:
        raise InvalidEvent('"data" is missing (expected the channel or client object)')
    data = envelope["data"]
    if not isinstance(data, dict):
        raise InvalidEvent(f'"data" must be a JSON object, got {_kind(data)}')
    data = _fit(data, text)
    channel_id, client_id = _ids(event_type, data)
    return ParsedEvent(event_type=event_type, channel_id=channel_id, client_id=client_id, data=data)
