"""Envelope parsing: ids read leniently, every malformed body refused with a message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from onboarding.receiver import KNOWN_EVENTS, InvalidEvent, is_known_event, parse_event


def _body(event: Any, data: Any) -> bytes:
    return json.dumps({"event": event, "data": data}).encode()


@pytest.mark.parametrize(
    ("event", "data", "channel_id", "client_id"),
    [
        pytest.param(
            "channel_created", {"id": "ch", "client_id": "cl"}, "ch", "cl", id="channel-id"
        ),
        pytest.param("channel_ready", {"channel_id": "ch"}, "ch", None, id="channel-channel_id"),
        pytest.param("channel_live", {"id": "ch", "client": {"id": "cl"}}, "ch", "cl", id="nested"),
        pytest.param("client_created", {"id": "cl"}, None, "cl", id="client-id"),
        pytest.param("client_created", {"client_id": "cl"}, None, "cl", id="client-client_id"),
        pytest.param("channel_created", {"id": 42, "client_id": 7}, "42", "7", id="int-ids"),
        pytest.param(
            "channel_created", {"id": True, "client_id": None}, None, None, id="bool-null"
        ),
        pytest.param("channel_created", {"id": "x" * 65}, None, None, id="too-long"),
        pytest.param(
            "account_violation", {"id": "waba", "channel_id": "ch"}, "ch", None, id="acct"
        ),
        pytest.param("something_new", {"client": "cl"}, None, None, id="unknown"),
    ],
)
def test_ids_are_read_leniently(
    event: str, data: dict[str, Any], channel_id: str | None, client_id: str | None
) -> None:
    """Channel and client ids come from wherever the event kind keeps them, as strings."""
    parsed = parse_event(_body(event, data))
    assert (parsed.event_type, parsed.channel_id, parsed.client_id) == (
        event,
        channel_id,
        client_id,
    )
    assert parsed.data == data


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"not json{", "not valid JSON", id="not-json"),
        pytest.param(b'{"event": "\xff"}', "not UTF-8", id="not-utf8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "not valid JSON", id="deep-nesting"),
        pytest.param(b"[1, 2]", "got an array", id="array"),
        pytest.param(b'"channel_created"', "got a string", id="string"),
        pytest.param(b'{"data": {}}', '"event" is missing', id="no-event"),
        pytest.param(_body(5, {}), '"event" must be a non-empty string', id="event-number"),
        pytest.param(_body(" ", {}), '"event" must be a non-empty string', id="event-blank"),
        pytest.param(_body("e" * 65, {}), "longer than 64", id="event-too-long"),
        pytest.param(b'{"event": "channel_created"}', '"data" is missing', id="no-data"),
        pytest.param(_body("channel_created", [1]), '"data" must be a JSON object', id="data-list"),
        pytest.param(_body("channel_created", None), "got null", id="data-null"),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(body: bytes, message: str) -> None:
    """Every malformed body raises InvalidEvent whose message names what is wrong."""
    with pytest.raises(InvalidEvent, match=message.replace("[", r"\[")):
        parse_event(body)


@pytest.mark.parametrize(
    ("name", "known"),
    [
        *[pytest.param(name, True, id=name) for name in sorted(KNOWN_EVENTS)],
        pytest.param("channel_cancelled", True, id="channel-cancel"),
        pytest.param("client_cancellation_requested", True, id="client-cancel"),
        pytest.param("channel_deleted", False, id="unknown-channel"),
        pytest.param("ping", False, id="unknown"),
    ],
)
def test_known_events(name: str, known: bool) -> None:
    """The documented names and cancellation events are known; anything else is not."""
    assert is_known_event(name) is known
