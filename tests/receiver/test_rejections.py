"""Bad deliveries: refused with a clear status and message, and still kept in the inbox."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest
from pydantic import SecretStr

from onboarding.receiver.app import REJECTED_PREFIX
from onboarding.store import make_engine
from tests.receiver.conftest import StartReceiver
from tests.receiver.support import RecordingHandoff, Served, envelope
from tests.servers import free_port

ONE_BACKEND = pytest.mark.parametrize("test_database", ["sqlite"], indirect=True)
HMAC_KEY = "relay-signing-key-K8p3"


def _signature(body: bytes, key: str = HMAC_KEY) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("body", "message", "kept"),
    [
        pytest.param(b"not json{", "not valid JSON", "not json{", id="not-json"),
        pytest.param(b'{"event": "\xff"}', "not UTF-8", '{"event": "\\xff"}', id="not-utf8"),
        pytest.param(b'{"event": "a\x00"}', "not valid JSON", '{"event": "a\\x00"}', id="nul"),
    ],
)
def test_unparseable_body_is_400_and_kept_as_rejected(
    receiver: Served, handoff: RecordingHandoff, body: bytes, message: str, kept: str
) -> None:
    """A body that is not UTF-8 JSON gets 400 saying so and is stored rejected, body intact."""
    response = receiver.post(body)

    assert response.status_code == 400
    assert message in response.json()["error"]
    [row] = receiver.rows()
    assert (row.id, row.outcome, row.body) == (response.json()["inbox_id"], "rejected", kept)
    assert message in (row.error or "")
    assert handoff.calls == []


@ONE_BACKEND
@pytest.mark.parametrize(
    ("envelope_json", "message"),
    [
        pytest.param([{"event": "channel_created"}], "got an array", id="array"),
        pytest.param(None, "got null", id="null"),
        pytest.param({"data": {"id": "ch"}}, '"event" is missing', id="no-event"),
        pytest.param({"event": 3, "data": {}}, '"event" must be a non-empty string', id="int"),
        pytest.param({"event": "channel_ready"}, '"data" is missing', id="no-data"),
        pytest.param({"event": "channel_ready", "data": "ch"}, "got a string", id="data-str"),
    ],
)
def test_wrong_shape_is_400_and_kept_as_rejected(
    receiver: Served, handoff: RecordingHandoff, envelope_json: object, message: str
) -> None:
    """JSON that is not an {event, data} envelope gets 400 naming the problem and a rejected row."""
    body = json.dumps(envelope_json).encode()
    response = receiver.post(body)

    assert response.status_code == 400
    assert message in response.json()["error"]
    [row] = receiver.rows()
    assert (row.outcome, row.body, row.event_type) == ("rejected", body.decode(), None)
    assert message in (row.error or "")
    assert handoff.calls == []


@pytest.mark.parametrize("declared", [pytest.param(True, id="content-length"), False])
def test_oversized_body_is_413_and_only_a_bounded_prefix_is_kept(
    start_receiver: StartReceiver, declared: bool
) -> None:
    """A body over max_bytes gets 413; the row keeps the hash, size and first bytes read."""
    handoff = RecordingHandoff()
    receiver = start_receiver(handoff, max_bytes=1024)
    body = envelope(padding="x" * 4096)[:4096]
    response = receiver.post(body if declared else iter([body[:512]] * 8))

    assert response.status_code == 413
    assert "larger than 1024 bytes" in response.json()["error"]
    [row] = receiver.rows()
    assert row.outcome == "rejected"
    assert (row.error or "").startswith("body too large: a body of ")
    sent = body if declared else body[:512] * 8
    assert row.body_size is not None
    assert row.body_sha256 == hashlib.sha256(sent[: row.body_size]).hexdigest()
    assert row.body == sent[:REJECTED_PREFIX].decode()
    assert handoff.calls == []


@ONE_BACKEND
def test_body_at_the_limit_is_accepted(start_receiver: StartReceiver) -> None:
    """A body of exactly max_bytes, streamed without Content-Length, is still accepted."""
    receiver = start_receiver(RecordingHandoff(), max_bytes=1024)
    skeleton = json.dumps({"event": "channel_ready", "data": {"id": "ch-1", "p": ""}}).encode()
    body = skeleton.replace(b'"p": ""', b'"p": "' + b"p" * (1024 - len(skeleton)) + b'"')
    assert len(body) == 1024

    response = receiver.post(iter([body[:500], body[500:]]))
    assert (response.status_code, response.json()["status"]) == (202, "accepted")


@pytest.mark.parametrize(
    ("signature", "status"),
    [
        pytest.param("good", 202, id="good"),
        pytest.param("wrong-key", 401, id="wrong-key"),
        pytest.param("garbage", 401, id="garbage"),
        pytest.param(None, 401, id="missing"),
    ],
)
def test_hmac_signature_is_required_when_configured(
    start_receiver: StartReceiver, signature: str | None, status: int
) -> None:
    """With an HMAC secret, only a correct X-Hub-Signature-256 is accepted; others get 401."""
    handoff = RecordingHandoff()
    receiver = start_receiver(handoff, hmac_secret=SecretStr(HMAC_KEY))
    body = envelope()
    headers = {
        "good": {"X-Hub-Signature-256": _signature(body)},
        "wrong-key": {"X-Hub-Signature-256": _signature(body, "other-key")},
        "garbage": {"X-Hub-Signature-256": "sha256=zz"},
        None: {},
    }[signature]
    response = receiver.post(body, headers=headers)

    assert response.status_code == status
    [row] = receiver.rows()
    if status == 401:
        assert "X-Hub-Signature-256" in response.json()["error"]
        assert (row.outcome, row.error) == ("rejected", "bad signature")
        assert handoff.calls == []
    else:
        receiver.settled(row.id or 0, "handled")
        assert len(handoff.calls) == 1


@ONE_BACKEND
def test_signed_delivery_is_accepted_after_a_bad_one_of_the_same_body(
    start_receiver: StartReceiver,
) -> None:
    """A refused unsigned copy does not make the later correctly signed body a duplicate."""
    receiver = start_receiver(None, hmac_secret=SecretStr(HMAC_KEY))
    body = envelope()
    assert receiver.post(body).status_code == 401

    response = receiver.post(body, headers={"X-Hub-Signature-256": _signature(body)})
    assert (response.status_code, response.json()["status"]) == (202, "accepted")
    assert [row.outcome for row in receiver.rows()] == ["rejected", "accepted"]


@ONE_BACKEND
def test_database_down_is_503_with_a_clear_message(
    start_receiver: StartReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """With the history database unreachable, a delivery and /healthz get 503 naming no URL."""
    dead = make_engine(f"postgresql+psycopg://postgres:pw-9z@127.0.0.1:{free_port()}/inbox")
    handoff = RecordingHandoff()
    receiver = start_receiver(handoff, on=dead)
    try:
        with caplog.at_level(logging.WARNING, logger="onboarding.receiver"):
            response = receiver.post(envelope())
            health = receiver.client.get(f"{receiver.base}/healthz")
    finally:
        dead.dispose()

    assert response.status_code == 503
    assert response.json()["error"].startswith("history database unavailable")
    assert "127.0.0.1" not in response.text
    assert health.status_code == 503
    assert health.json() == {"status": "unavailable", "database": "unavailable"}
    assert handoff.calls == []
    assert any("webhook not stored" in r.getMessage() for r in caplog.records)
    assert not any("pw-9z" in r.getMessage() for r in caplog.records)
