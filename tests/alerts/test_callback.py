"""The signed completion callback, delivered to the shared loopback callback receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle

import httpx
import pytest
from pydantic import SecretStr

from onboarding.callback import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CallbackError,
    deliver_completion,
    encode_payload,
    sign,
    verify,
)
from onboarding.settings import ConfigError, load_settings
from tests.fixtures.partner import CallbackServer
from tests.servers import free_port

SECRET = SecretStr("callback-signing-key")
API_KEY = "MSG-API-KEY-do-not-leak-1234"
PAYLOAD = {"channel_id": "ch_1", "client_id": "cl_1", "api_key": API_KEY}


QUERY_TOKEN = "partner-query-token"


NOW = 1_790_000_000


def test_signature_round_trip() -> None:
    """sign() gives `t=<unix>,v1=<hex>` that verify() accepts for the same body and secret."""
    body = encode_payload(PAYLOAD)
    signature = sign(body, SECRET, timestamp=NOW)
    t_part, v1_part = signature.split(",")
    assert t_part == f"t={NOW}"
    assert v1_part.startswith("v1=")
    assert len(v1_part) == len("v1=") + 64
    assert verify(body, signature, SECRET, now=NOW)


def test_signature_is_hmac_over_timestamp_dot_body() -> None:
    """v1 is HMAC-SHA256(secret, "<t>.<body>"), as the README tells partners to recompute it."""
    body = encode_payload(PAYLOAD)
    expected = hmac.new(
        SECRET.get_secret_value().encode(), f"{NOW}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert sign(body, SECRET, timestamp=NOW) == f"t={NOW},v1={expected}"


@pytest.mark.parametrize(
    ("body", "secret", "signature"),
    [
        pytest.param(
            encode_payload({**PAYLOAD, "channel_id": "ch_2"}),
            SECRET,
            sign(encode_payload(PAYLOAD), SECRET, timestamp=NOW),
            id="tampered-body",
        ),
        pytest.param(
            encode_payload(PAYLOAD),
            SecretStr("another-key"),
            sign(encode_payload(PAYLOAD), SECRET, timestamp=NOW),
            id="wrong-secret",
        ),
        pytest.param(
            encode_payload(PAYLOAD),
            SECRET,
            sign(encode_payload(PAYLOAD), SECRET, timestamp=NOW).replace(
                f"t={NOW}", f"t={NOW + 1}"
            ),
            id="moved-timestamp",
        ),
        pytest.param(encode_payload(PAYLOAD), SECRET, "sha256=abc", id="old-format"),
        pytest.param(encode_payload(PAYLOAD), SECRET, "", id="empty"),
    ],
)
def test_tampering_fails_verification(body: bytes, secret: SecretStr, signature: str) -> None:
    """A changed body, another secret, a moved timestamp or a malformed header does not verify."""
    assert not verify(body, signature, secret, now=NOW)


@pytest.mark.parametrize(
    ("age", "accepted"),
    [
        pytest.param(299, True, id="within-tolerance"),
        pytest.param(301, False, id="too-old"),
        pytest.param(-301, False, id="from-the-future"),
    ],
)
def test_verify_rejects_old_timestamps(age: int, accepted: bool) -> None:
    """A correctly signed request older (or newer) than the 300 s tolerance is refused."""
    body = encode_payload(PAYLOAD)
    signature = sign(body, SECRET, timestamp=NOW - age)
    assert verify(body, signature, SECRET, now=NOW) is accepted


async def test_delivery_is_signed_json(callback_receiver: CallbackServer) -> None:
    """The receiver gets the payload as JSON with a valid, current signature and a timestamp."""
    url = f"{callback_receiver.url}?token={QUERY_TOKEN}"
    async with httpx.AsyncClient() as http:
        status = await deliver_completion(http, url=url, secret=SECRET, payload=PAYLOAD)
    assert status == 200
    [(raw, headers)] = callback_receiver.calls
    assert verify(raw, headers[SIGNATURE_HEADER.lower()], SECRET)
    assert json.loads(raw) == PAYLOAD
    assert headers["content-type"] == "application/json"
    sent_at = headers[TIMESTAMP_HEADER.lower()]
    assert headers[SIGNATURE_HEADER.lower()].startswith(f"t={sent_at},v1=")


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (429, True), (403, False)])
async def test_non_2xx_raises_without_the_payload(
    callback_receiver: CallbackServer, status: int, retryable: bool
) -> None:
    """A non-2xx answer raises CallbackError naming the URL, never the body or its API key."""
    callback_receiver.fail_next(1, status=status)
    url = f"{callback_receiver.url}?token={QUERY_TOKEN}"
    async with httpx.AsyncClient() as http:
        with pytest.raises(CallbackError) as caught:
            await deliver_completion(http, url=url, secret=SECRET, payload=PAYLOAD)
    error = caught.value
    assert error.status_code == status
    assert error.retryable is retryable
    assert "/onboarded" in str(error)
    assert API_KEY not in str(error)
    assert QUERY_TOKEN not in str(error)


async def test_network_failure_raises_a_clear_error_with_no_chain() -> None:
    """No answer at all is a retryable CallbackError that does not chain httpx's request."""
    url = f"http://127.0.0.1:{free_port()}/done"
    async with httpx.AsyncClient() as http:
        with pytest.raises(CallbackError) as caught:
            await deliver_completion(http, url=url, secret=SECRET, payload=PAYLOAD)
    error = caught.value
    assert error.retryable
    assert error.status_code is None
    assert "got no answer" in str(error)
    assert API_KEY not in str(error)
    assert error.__cause__ is None
    assert error.__context__ is None


def test_callback_error_survives_pickling() -> None:
    """Prefect pickles a failed task's exception: CallbackError comes back with its fields."""
    error = CallbackError(
        "callback answered HTTP 503", url="https://x/cb", status_code=503, retryable=True
    )
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert (str(copy), copy.url, copy.status_code, copy.retryable) == (
        "callback answered HTTP 503",
        "https://x/cb",
        503,
        True,
    )


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://partner.example.com/done", id="public-host"),
        pytest.param("http://10.0.0.5/done", id="private-address"),
        pytest.param("ftp://partner.example.com/done", id="other-scheme"),
    ],
)
def test_plain_http_callback_is_refused_off_loopback(url: str) -> None:
    """ONBOARDING_CALLBACK_URL must be https:// unless on loopback: a clear ConfigError."""
    with pytest.raises(ConfigError, match=r"ONBOARDING_CALLBACK_URL: must .*https://"):
        load_settings(callback_url=url, callback_secret="s")


@pytest.mark.parametrize(
    "url",
    [
        "https://partner.example.com/done",
        "http://127.0.0.1:8099/done",
        "http://127.5.0.1/done",
        "http://[::1]:8099/done",
        "http://localhost/done",
    ],
)
def test_https_and_loopback_callbacks_are_accepted(url: str) -> None:
    """https:// anywhere and http:// on 127.0.0.0/8, ::1 or localhost are valid callback URLs."""
    assert load_settings(callback_url=url, callback_secret="s").callback_url == url
