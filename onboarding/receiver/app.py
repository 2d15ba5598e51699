"""The partner-webhook endpoint: ``POST /hooks/360dialog/{token}`` and ``GET /healthz``.

What a delivery gets, in the order it is checked:

==========================================  ======  ==============================================
delivery                                    answer  inbox row
==========================================  ======  ==============================================
wrong path token                            404     none
body over ``max_bytes`` (header or stream)  413     ``rejected``, a note instead of the body
missing/bad ``X-Hub-Signature-256``         401     ``rejected`` ("bad signature"), body kept
not UTF-8 / not JSON / wrong shape          400     ``rejected`` with the error, body kept
unknown event name                          202     ``ignored``
known event                                 202     ``accepted``, then ``handled``/``ignored``/
                                                    ``failed`` once the handoff returns
the same body again                         202     the first row (handed on again only if it is
                                                    still ``accepted`` or ``failed``)
history database unreachable                503     none (the sender delivers again)
==========================================  ======  ==============================================

The answer goes out before the handoff starts: the handoff runs in an asyncio task the app tracks;
shutdown waits ``drain_timeout`` seconds for running handoffs, then cancels them (their rows stay
``accepted`` and :func:`~onboarding.receiver.replay.replay_unhandled` hands them on later).

Rows refused for a bad signature use the dedup key ``unsigned:<sha256>`` so that a correctly
signed delivery of the same body is still accepted afterwards.

The token is part of the URL path, so nothing may log request paths: serve the app with
:func:`~onboarding.receiver.serving.serve_config` (uvicorn's access log off). Header values that
contain the token (a relay's ``X-Original-URI``, say) are not stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from anyio import to_thread
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from onboarding.receiver.events import Handoff, InvalidEvent, ParsedEvent, parse_event
from onboarding.receiver.handling import Stored, describe, hand_off, one_line, store
from onboarding.store import (
    DatabaseUnavailable,
    EventOutcome,
    body_dedup_key,
    check_connection,
)

__all__ = ["HOOK_PATH", "SIGNATURE_HEADER", "create_app"]

logger = logging.getLogger("onboarding.receiver")

SIGNATURE_HEADER = "X-Hub-Signature-256"
HOOK_PATH = "/hooks/360dialog/{token}"
_RETRY_HANDOFF = frozenset({EventOutcome.ACCEPTED, EventOutcome.FAILED})
_UNAVAILABLE = "history database unavailable; deliver the event again later"


def _storable(body: bytes) -> bytes:
    """``body`` with NUL bytes escaped: PostgreSQL text cannot hold them (valid JSON has none)."""
    return body.replace(b"\x00", b"\\x00")


class _DatabaseDown(Exception):
    """The inbox could not be written; the request is answered 503."""


class _Receiver:
    """The endpoint's state: its secrets, the inbox engine and the handoffs in flight."""

    def __init__(
        self,
        *,
        engine: Engine,
        token: SecretStr,
        handoff: Handoff | None,
        max_bytes: int,
        hmac_secret: SecretStr | None,
        drain_timeout: float,
        max_handoffs: int,
    ) -> None:
        self.engine = engine
        self.handoff = handoff
        self.max_bytes = max_bytes
        self.drain_timeout = drain_timeout
        self._slots = asyncio.Semaphore(max_handoffs)
        self._token = token.get_secret_value()
        self._token_bytes = self._token.encode()
        self._hmac_key = hmac_secret.get_secret_value().encode() if hmac_secret else None
        secrets = (self._token, hmac_secret.get_secret_value() if hmac_secret else "")
        self._scrub = tuple(secret for secret in secrets if secret)
        self._tasks: set[asyncio.Task[str]] = set()
        self._claims: set[str] = set()  # dedup keys being stored or handed on right now

    # -- the endpoints ------------------------------------------------------------------------

    async def hook(self, request: Request) -> Response:
        """``POST /hooks/360dialog/{token}``: store the delivery, answer, then hand it on."""
        if not hmac.compare_digest(request.path_params["token"].encode(), self._token_bytes):
            return JSONResponse({"error": "not found"}, 404)
        try:
            return await self._receive(request)
        except _DatabaseDown:
            return JSONResponse({"error": _UNAVAILABLE}, 503)
        except ClientDisconnect:  # the sender gave up mid-body; nothing was stored
            return Response(status_code=400)

    async def healthz(self, _request: Request) -> Response:
        """``GET /healthz``: 200 when the history database answers, 503 when it does not."""
        try:
            await to_thread.run_sync(lambda: check_connection(self.engine))
        except DatabaseUnavailable as error:
            logger.warning("health check: %s", one_line(error, self._scrub))
            return JSONResponse({"status": "unavailable", "database": "unavailable"}, 503)
        return JSONResponse({"status": "ok", "database": "ok"})

    # -- one delivery -------------------------------------------------------------------------

    async def _receive(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if self._token not in v}
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(headers, f"a body of {int(declared)} bytes")
        body = await self._read_body(request)
        if body is None:
            return await self._too_large(headers, f"a body of more than {self.max_bytes} bytes")
        if self._hmac_key is not None and not self._signed(request, body):
            stored = await self._store(
                dedup_key="unsigned:" + hashlib.sha256(body).hexdigest(),
                body=_storable(body),
                headers=headers,
                outcome=EventOutcome.REJECTED,
                error="bad signature",
            )
            logger.info("inbox #%d rejected: bad signature", stored.inbox_id)
            return JSONResponse({"error": f"missing or bad {SIGNATURE_HEADER}"}, 401)
        try:
            parsed = parse_event(body)
        except InvalidEvent as error:
            stored = await self._store(
                dedup_key=body_dedup_key(body),
                body=_storable(body),
                headers=headers,
                outcome=EventOutcome.REJECTED,
                error=str(error),
            )
            logger.info("inbox #%d rejected: %s", stored.inbox_id, error)
            return JSONResponse({"error": str(error), "inbox_id": stored.inbox_id}, 400)
        return await self._accept(parsed, body, headers)

    async def _accept(self, parsed: ParsedEvent, body: bytes, headers: dict[str, str]) -> Response:
        key = body_dedup_key(body)
        # Claim the key before reading the row: whoever holds it hands the event on and releases
        # it only after the outcome is recorded, so a claimant always reads a settled outcome.
        claimed = self.handoff is not None and parsed.known and key not in self._claims
        if claimed:
            self._claims.add(key)
        handing_off = False
        try:
            stored = await self._store(
                dedup_key=key,
                body=body,
                headers=headers,
                event_type=parsed.event_type,
                channel_id=parsed.channel_id,
                client_id=parsed.client_id,
                outcome=EventOutcome.ACCEPTED if parsed.known else EventOutcome.IGNORED,
                error=None if parsed.known else "unknown event",
            )
            handing_off = claimed and stored.outcome in _RETRY_HANDOFF
        finally:
            if claimed and not handing_off:
                self._claims.discard(key)
        label = describe(stored.inbox_id, parsed.event_type, parsed.channel_id)
        if not stored.stored_now:
            status = "duplicate"
            logger.info("%s: delivered again (%s)", label, stored.outcome)
        elif parsed.known:
            status = "accepted"
            if self.handoff is None:
                logger.info("%s -> left for the replay (no handoff)", label)
        else:
            status = "ignored"
            logger.info("%s -> ignored (unknown event)", label)
        background = None
        if handing_off:
            background = BackgroundTask(self._spawn, parsed, stored.inbox_id, key)
        return JSONResponse(
            {"status": status, "inbox_id": stored.inbox_id}, 202, background=background
        )

    async def _read_body(self, request: Request) -> bytes | None:
        """The body, or ``None`` as soon as it grows past ``max_bytes`` (the rest is not read)."""
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_bytes:
                return None
        return bytes(body)

    def _signed(self, request: Request, body: bytes) -> bool:
        assert self._hmac_key is not None
        given = request.headers.get(SIGNATURE_HEADER, "")
        expected = "sha256=" + hmac.new(self._hmac_key, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(given.strip().lower().encode(), expected.encode())

    async def _too_large(self, headers: dict[str, str], size: str) -> Response:
        note = f"<{size}, over the limit of {self.max_bytes}, not kept>"
        stored = await self._store(
            dedup_key=f"oversized:{uuid.uuid4().hex}",
            body=note,
            headers=headers,
            outcome=EventOutcome.REJECTED,
            error="body too large",
        )
        logger.info("inbox #%d rejected: %s", stored.inbox_id, note)
        return JSONResponse({"error": f"body is larger than {self.max_bytes} bytes"}, 413)

    async def _store(self, **fields: Any) -> Stored:
        try:
            return await to_thread.run_sync(lambda: store(self.engine, **fields))
        except (DatabaseUnavailable, SQLAlchemyError) as error:
            logger.error("webhook not stored: %s", one_line(error, self._scrub))
            raise _DatabaseDown from None

    # -- handoffs in the background -----------------------------------------------------------

    async def _spawn(self, parsed: ParsedEvent, inbox_id: int, key: str) -> None:
        """Start the handoff once the answer is out (run as the response's background task)."""
        task = asyncio.create_task(self._run(parsed, inbox_id, key), name=f"handoff-{inbox_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, parsed: ParsedEvent, inbox_id: int, key: str) -> str:
        assert self.handoff is not None
        try:
            async with self._slots:
                return await hand_off(
                    self.engine, self.handoff, parsed.with_inbox_id(inbox_id), scrub=self._scrub
                )
        finally:
            self._claims.discard(key)

    async def drain(self) -> None:
        """Wait for running handoffs up to ``drain_timeout``, then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=self.drain_timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            logger.warning(
                "%d handoff(s) cancelled at shutdown; the replay will redo them", len(pending)
            )


def create_app(
    *,
    engine: Engine,
    token: SecretStr,
    handoff: Handoff | None,
    max_bytes: int = 262_144,
    hmac_secret: SecretStr | None = None,
    drain_timeout: float = 10.0,
    max_handoffs: int = 16,
    signup: Route | None = None,
) -> Starlette:
    """The receiver as an ASGI app; with ``handoff=None`` events are stored and left unhandled.

    At most ``max_handoffs`` handoffs run at once (a burst of events queues behind them);
    ``drain_timeout`` is how long shutdown waits for them before cancelling.
    """
    if not token.get_secret_value():
        raise ValueError("the webhook token must not be empty")
    if max_bytes < 1:
        raise ValueError("max_bytes must be positive")
    receiver = _Receiver(
        engine=engine,
        token=token,
        handoff=handoff,
        max_bytes=max_bytes,
        hmac_secret=hmac_secret,
        drain_timeout=drain_timeout,
        max_handoffs=max_handoffs,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await receiver.drain()

    routes = [
        Route(HOOK_PATH, receiver.hook, methods=["POST"]),
        Route("/healthz", receiver.healthz, methods=["GET"]),
        *([signup] if signup is not None else []),  # receiver.signup.signup_route(...)
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.receiver = receiver
    return app
