"""The signed completion callback, against a real loopback receiver that checks the signature."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from onboarding.callback import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CallbackError,
    deliver_completion,
    encode_payload,
    sign,
    verify,
)
from tests.servers import free_port, serve_in_thread

SECRET = SecretStr("callback-signing-key")
API_KEY = "MSG-API-KEY-do-not-leak-1234"
PAYLOAD = {"channel_id": "ch_1", "client_id": "cl_1", "api_key": API_KEY}


@dataclass
class _Receiver:
    url: str = ""
    status: int = 200
    verified: list[bool] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle(self, request: Request) -> JSONResponse:
        raw = await request.body()
        with self.lock:
            self.verified.append(verify(raw, request.headers[SIGNATURE_HEADER], SECRET))
            self.bodies.append(await request.json())
            self.headers.append(dict(request.headers))
        return JSONResponse({"ok": self.status < 400}, status_code=self.status)


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[_Receiver]:
    """A partner's callback endpoint that verifies what it gets."""
    receiver = _Receiver()
    app = Starlette(routes=[Route("/done", receiver.handle, methods=["POST"])])
    with serve_in_thread(app) as base:
        receiver.url = f"{base}/done?token=partner-query-token"
        yield receiver


@pytest.fixture
def receiver(receiver_server: _Receiver) -> _Receiver:
    """The receiver, emptied and answering 200."""
    receiver_server.status = 200
    receiver_server.verified.clear()
    receiver_server.bodies.clear()
    receiver_server.headers.clear()
    return receiver_server


def test_signature_round_trip() -> None:
    """sign() gives a sha256= value that verify() accepts for the same body and secret."""
    body = encode_payload(PAYLOAD)
    signature = sign(body, SECRET)
    assert signature.startswith("sha256=")
    assert len(signature) == len("sha256=") + 64
    assert verify(body, signature, SECRET)


@pytest.mark.parametrize(
    ("body", "secret"),
    [
        pytest.param(encode_payload({**PAYLOAD, "channel_id": "ch_2"}), SECRET, id="tampered"),
        pytest.param(encode_payload(PAYLOAD), SecretStr("another-key"), id="wrong-secret"),
    ],
)
def test_tampering_fails_verification(body: bytes, secret: SecretStr) -> None:
    """A changed body or another secret does not verify against the original signature."""
    assert not verify(body, sign(encode_payload(PAYLOAD), SECRET), secret)


async def test_delivery_is_signed_json(receiver: _Receiver) -> None:
    """The receiver gets the payload as JSON with a valid signature and a timestamp."""
    async with httpx.AsyncClient() as http:
        status = await deliver_completion(http, url=receiver.url, secret=SECRET, payload=PAYLOAD)
    assert status == 200
    assert receiver.verified == [True]
    assert receiver.bodies == [PAYLOAD]
    assert receiver.headers[0]["content-type"] == "application/json"
    assert receiver.headers[0][TIMESTAMP_HEADER.lower()].isdigit()


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (429, True), (403, False)])
async def test_non_2xx_raises_without_the_payload(
    receiver: _Receiver, status: int, retryable: bool
) -> None:
    """A non-2xx answer raises CallbackError naming the URL, never the body or its API key."""
    receiver.status = status
    async with httpx.AsyncClient() as http:
        with pytest.raises(CallbackError) as caught:
            await deliver_completion(http, url=receiver.url, secret=SECRET, payload=PAYLOAD)
    error = caught.value
    assert error.status_code == status
    assert error.retryable is retryable
    assert "/done" in str(error)
    assert API_KEY not in str(error)
    assert "partner-query-token" not in str(error)


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
