"""Every bad input we could think of, on SQLite and PostgreSQL: its answer and what is stored.

The receiver runs with an HMAC secret (so the signature cases apply) and a handoff that writes
the status the webhook carried into the history, as the real one does: a value that does not fit
a column would fail it there. After each bad input a good event must still be accepted and
handed on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pytest
from anyio import to_thread
from pydantic import SecretStr
from sqlalchemy import Engine

from onboarding.receiver import HandoffEvent
from onboarding.receiver.app import REJECTED_PREFIX
from onboarding.store import InboundEvent, record_observation, session_scope
from tests.receiver.conftest import StartReceiver
from tests.receiver.rawhttp import chunked, pieces, raw_post
from tests.receiver.support import TOKEN, Served, envelope

HMAC_KEY = "relay-signing-key-B4d1nput"
FIFTY_MB = 50 * 1024 * 1024


def _sign(body: bytes) -> str:
    return "sha256=" + hmac.new(HMAC_KEY.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class ObservingHandoff:
    """Records each event and writes its webhook status to the history, like the real one."""

    engine: Engine
    calls: list[HandoffEvent] = field(default_factory=list)

    async def __call__(self, event: HandoffEvent) -> str:
        """Record ``event``; write its (availability_)status as an observation."""
        self.calls.append(event)
        status = event.data.get("availability_status")
        if event.channel_id and isinstance(status, str):
            await to_thread.run_sync(lambda: self._observe(event, status))
        return "handled"

    def _observe(self, event: HandoffEvent, availability: str) -> None:
        assert event.channel_id is not None
        status = event.data.get("status")
        with session_scope(self.engine) as session:
            record_observation(
                session,
                channel_id=event.channel_id,
                availability_status=availability,
                status=status if isinstance(status, str) else None,
                source="webhook",
            )


@dataclass(frozen=True)
class Bad:
    """One bad input: how it is sent, the answer it gets, and the inbox row it leaves."""

    status: int
    body: bytes = b""
    token: str = TOKEN
    signature: str = "good"  # good | missing | wrong | upper
    raw: str | None = None  # "length" / "chunked": 50 MB over a raw socket
    outcome: str | None = None  # None: no row at all
    error: str = ""
    row: Callable[[InboundEvent], None] | None = None
    handed: Callable[[HandoffEvent], None] | None = None


def _nested_keys(count: int) -> bytes:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    keys = [
        alphabet[n // 3844 % 62] + alphabet[n // 62 % 62] + alphabet[n % 62] for n in range(count)
    ]
    data = {"id": "ch-keys", **dict.fromkeys(keys, 0)}
    return json.dumps({"event": "channel_created", "data": data}, separators=(",", ":")).encode()


def _ids(
    event_type: str, channel: str | None, client: str | None
) -> Callable[[InboundEvent], None]:
    def check(row: InboundEvent) -> None:
        assert (row.event_type, row.channel_id, row.client_id) == (event_type, channel, client)

    return check


def _no_nul(event: HandoffEvent) -> None:
    assert event.data["availability_status"] == "setting_up"
    assert "\\u0000" not in json.dumps(event.data)
    assert event.data["nested"] == [{"k": ""}]


def _all_keys(event: HandoffEvent) -> None:
    assert len(event.data) == 25_001


def _clean_ids(event: HandoffEvent) -> None:
    assert (event.channel_id, event.client_id) == ("ch-nul", "cl-nul")


def _cut(event: HandoffEvent) -> None:
    assert event.data["availability_status"] == "s" * 32
    assert event.data["status"] == "t" * 64


NUL_IDS = (
    b'{"event": "channel_created\\u0000", '
    b'"data": {"id": "ch-\\u0000nul", "client_id": "cl-\\u0000nul"}}'
)
NUL_DATA = (
    b'{"event": "channel_created", "data": {"id": "ch-data", '
    b'"availability_status": "setting\\u0000_up", "status": "a\\u0000b", '
    b'"nested": [{"k\\u0000": "\\u0000"}]}}'
)
LONG_STATUS = envelope(id="ch-long", availability_status="s" * 33, status="t" * 65)
BIG_NUMBER = b'{"event": "channel_created", "data": {"id": "ch-big", "n": ' + b"7" * 5000 + b"}}"
SIGNED = envelope(id="ch-signed")

CASES = {
    "wrong-token": Bad(404, SIGNED, token="not-the-token"),
    "token-prefix": Bad(404, SIGNED, token=TOKEN[:-1]),
    "token-longer": Bad(404, SIGNED, token=TOKEN + "x"),
    "50mb-content-length": Bad(413, raw="length", outcome="rejected", error="body too large"),
    "50mb-chunked": Bad(413, raw="chunked", outcome="rejected", error="body too large"),
    "malformed-json": Bad(
        400, b'{"event": "channel_created", "data": {', outcome="rejected", error="not valid JSON"
    ),
    "not-utf8": Bad(
        400,
        b'{"event": "channel_created", "data": {"id": "\xff\xfe"}}',
        outcome="rejected",
        error="not UTF-8",
    ),
    "json-array": Bad(
        400, b'[{"event": "channel_created", "data": {}}]', outcome="rejected", error="an array"
    ),
    "nested-100000-deep": Bad(
        400, b"[" * 100_000 + b"]" * 100_000, outcome="rejected", error="nested too deeply"
    ),
    "25000-keys": Bad(
        202,
        _nested_keys(25_000),
        outcome="handled",
        row=_ids("channel_created", "ch-keys", None),
        handed=_all_keys,
    ),
    "nul-in-ids": Bad(
        202,
        NUL_IDS,
        outcome="handled",
        row=_ids("channel_created", "ch-nul", "cl-nul"),
        handed=_clean_ids,
    ),
    "nul-in-data": Bad(
        202,
        NUL_DATA,
        outcome="handled",
        row=_ids("channel_created", "ch-data", None),
        handed=_no_nul,
    ),
    "lone-surrogate-in-id": Bad(
        202,
        b'{"event": "channel_created", "data": {"id": "ch-\\ud800x"}}',
        outcome="handled",
        row=_ids("channel_created", "ch-?x", None),
    ),
    "33-character-status": Bad(
        202,
        LONG_STATUS,
        outcome="handled",
        row=_ids("channel_created", "ch-long", None),
        handed=_cut,
    ),
    "5000-digit-number": Bad(400, BIG_NUMBER, outcome="rejected", error="4300 digits"),
    "hmac-missing": Bad(
        401, SIGNED, signature="missing", outcome="rejected", error="bad signature"
    ),
    "hmac-wrong": Bad(401, SIGNED, signature="wrong", outcome="rejected", error="bad signature"),
    "hmac-truncated": Bad(
        401, SIGNED, signature="truncated", outcome="rejected", error="bad signature"
    ),
    "hmac-uppercase-hex": Bad(
        202,
        SIGNED,
        signature="upper",
        outcome="handled",
        row=_ids("channel_created", "ch-signed", None),
    ),
}


def _signature_headers(case: Bad) -> dict[str, str]:
    good = _sign(case.body)
    return {
        "good": {"X-Hub-Signature-256": good},
        "missing": {},
        "wrong": {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        "truncated": {"X-Hub-Signature-256": good[:-2]},
        "upper": {"X-Hub-Signature-256": "sha256=" + good.removeprefix("sha256=").upper()},
    }[case.signature]


def _send(receiver: Served, case: Bad) -> tuple[int, bytes]:
    """Send ``case``; return the status and the bytes of its body the server could have read."""
    if case.raw is None:
        response = receiver.post(case.body, token=case.token, headers=_signature_headers(case))
        return response.status_code, case.body
    headers = {"Content-Type": "application/json"}
    parts: Iterable[bytes]
    if case.raw == "length":
        headers["Content-Length"] = str(FIFTY_MB)
        parts = pieces(FIFTY_MB)
    else:
        headers["Transfer-Encoding"] = "chunked"
        parts = chunked(pieces(FIFTY_MB))
    status, _ = raw_post(receiver.hook_url(case.token), headers=headers, parts=parts)
    return status, b""


def _stored_prefix(sent: bytes) -> str:
    text = sent[:REJECTED_PREFIX].decode("utf-8", errors="backslashreplace")
    return text.replace("\x00", "\\x00")


def _check_rejected(row: InboundEvent, case: Bad, sent: bytes) -> None:
    """A rejection keeps the hash and size of what was read and only a bounded prefix of it."""
    assert case.error in (row.error or "")
    assert row.body_size is not None
    if case.raw is None:
        assert (row.body_size, row.body_sha256) == (len(sent), hashlib.sha256(sent).hexdigest())
        assert row.body == _stored_prefix(sent)
    else:  # 50 MB of "x": only what was read before the limit stopped the read
        assert row.body_size < FIFTY_MB // 10
        assert row.body_sha256 == hashlib.sha256(b"x" * row.body_size).hexdigest()
        assert row.body == "x" * REJECTED_PREFIX
    assert (row.event_type, row.channel_id) == (None, None)


def _good_event_still_handed_on(receiver: Served, handoff: ObservingHandoff) -> None:
    body = envelope("channel_ready", id="ch-after", availability_status="ready")
    response = receiver.post(body, headers={"X-Hub-Signature-256": _sign(body)})
    assert (response.status_code, response.json()["status"]) == (202, "accepted")
    receiver.settled(response.json()["inbox_id"], "handled")
    assert handoff.calls[-1].channel_id == "ch-after"


@pytest.fixture
def guarded(start_receiver: StartReceiver, engine: Engine) -> tuple[Served, ObservingHandoff]:
    """A receiver with an HMAC secret and the observing handoff."""
    handoff = ObservingHandoff(engine)
    return start_receiver(handoff, hmac_secret=SecretStr(HMAC_KEY)), handoff


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_gets_its_answer_and_a_bounded_record(
    guarded: tuple[Served, ObservingHandoff], case: Bad
) -> None:
    """Each bad input gets its status and leaves the row it should; a good event still passes."""
    receiver, handoff = guarded

    status, sent = _send(receiver, case)

    assert status == case.status
    rows = receiver.rows()
    if case.outcome is None:
        assert rows == []
    else:
        [row] = rows
        assert row.id is not None
        row = receiver.settled(row.id, case.outcome)
        if case.outcome == "rejected":
            _check_rejected(row, case, sent)
            assert handoff.calls == []
        else:
            assert row.body == case.body.decode()  # the body is kept as it came
            [event] = handoff.calls
            if case.handed is not None:
                case.handed(event)
        if case.row is not None:
            case.row(row)
    _good_event_still_handed_on(receiver, handoff)


@pytest.mark.parametrize("test_database", ["postgresql"], indirect=True)
def test_every_bad_input_in_a_row_leaves_the_receiver_working(
    guarded: tuple[Served, ObservingHandoff],
) -> None:
    """All the bad inputs one after another on one receiver: each answered, then a good one."""
    receiver, handoff = guarded
    statuses = {name: _send(receiver, case)[0] for name, case in CASES.items()}
    assert statuses == {name: case.status for name, case in CASES.items()}
    _good_event_still_handed_on(receiver, handoff)
