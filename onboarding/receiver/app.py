"""The partner-webhook endpoint: ``POST /hooks/360dialog/{token}`` and ``GET /healthz``.

What a delivery gets, in the order it is checked:

==========================================  ======  ==============================================
delivery                                    answer  inbox row
==========================================  ======  ==============================================
wrong path token (or a prefix of it)        404     none
body over ``max_bytes`` (header or stream)  413     ``rejected``: what was read, bounded
missing/bad ``X-Hub-Signature-256``         401     ``rejected`` ("bad signature"), bounded
not UTF-8 / not JSON / wrong shape /        400     ``rejected`` with the error, bounded
  a number Python cannot read
unknown event name                          202     ``ignored``
known event                                 202     ``accepted``, then ``handled``/``ignored``/
                                                    ``failed`` once the handoff returns
known event, handoff queue full             202     ``accepted``, left for the replay
the same body again                         202     the first row (handed on again only if it is
                                                    still ``accepted`` or ``failed``)
history database unreachable                503     none (the sender delivers again)
==========================================  ======  ==============================================

"Bounded": a rejected row keeps the SHA-256 and size of the bytes received and only the first
:data:`REJECTED_PREFIX` bytes of them (escaped where they are not text), so refused deliveries
cannot fill the disk. A 413 reads no further than the limit (for a declared size over it, no
further than the prefix). An accepted row keeps its body whole.

The answer goes out before the handoff starts: the handoff runs in an asyncio task the app tracks.
At most ``handoff_queue`` handoffs are held at once (``max_handoffs`` of them running); an event
beyond that is stored and answered all the same, and the replay hands it on. Shutdown waits
``drain_timeout`` seconds for running handoffs, then cancels them (their rows stay ``accepted``
and :func:`~onboarding.receiver.replay.replay_unhandled` hands them on later).

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
from dataclasses import dataclass
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
from onboarding.store import DatabaseUnavailable, EventOutcome, check_connection

__all__ = ["HOOK_PATH", "REJECTED_PREFIX", "SIGNATURE_HEADER", "create_app"]

logger = logging.getLogger("onboarding.receiver")

SIGNATURE_HEADER = "X-Hub-Signature-256"
HOOK_PATH = "/hooks/360dialog/{token}"
REJECTED_PREFIX = 1024
"""Bytes of a rejected body kept in the inbox (its hash and size are kept too)."""
_RETRY_HANDOFF = frozenset({EventOutcome.ACCEPTED, EventOutcome.FAILED})
_UNAVAILABLE = "history database unavailable; deliver the event again later"


@dataclass(frozen=True)
class _Received:
    """What was read of a body: all of it, or (when over the limit) the bytes read so far."""

    data: bytes
    size: int
    sha256: str
    complete: bool


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
        handoff_queue: int,
        retry_after: float,
    ) -> None:
        self.engine = engine
        self.handoff = handoff
        self.max_bytes = max_bytes
        self.drain_timeout = drain_timeout
        self.handoff_queue = handoff_queue
        self.retry_after = retry_after
        self._slots = asyncio.Semaphore(max_handoffs)
        self._queued = 0  # handoffs reserved or running
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
            received = await self._read(request, REJECTED_PREFIX)
            return await self._too_large(headers, received, f"a body of {int(declared)} bytes")
        received = await self._read(request, self.max_bytes)
        if not received.complete:
            more = f"a body of more than {self.max_bytes} bytes"
            return await self._too_large(headers, received, more)
        body = received.data
        if self._hmac_key is not None and not self._signed(request, body):
            stored = await self._reject(
                received, headers, key="unsigned:" + received.sha256, error="bad signature"
            )
            logger.info("inbox #%d rejected: bad signature", stored.inbox_id)
            return JSONResponse({"error": f"missing or bad {SIGNATURE_HEADER}"}, 401)
        try:
            parsed = parse_event(body)
        except InvalidEvent as error:
            key = "sha256:" + received.sha256
            stored = await self._reject(received, headers, key=key, error=str(error))
            logger.info("inbox #%d rejected: %s", stored.inbox_id, error)
            return JSONResponse({"error": str(error), "inbox_id": stored.inbox_id}, 400)
        return await self._accept(parsed, received, headers)

    async def _accept(
        self, parsed: ParsedEvent, received: _Received, headers: dict[str, str]
    ) -> Response:
        key = "sha256:" + received.sha256
        # Claim the key before reading the row: whoever holds it hands the event on and releases
        # it only after the outcome is recorded, so a claimant always reads a settled outcome.
        claimed = self.handoff is not None and parsed.known and key not in self._claims
        if claimed:
            self._claims.add(key)
        handing_off = False
        try:
            stored = await self._store(
                dedup_key=key,
                body=received.data,
                headers=headers,
                event_type=parsed.event_type,
                channel_id=parsed.channel_id,
                client_id=parsed.client_id,
                outcome=EventOutcome.ACCEPTED if parsed.known else EventOutcome.IGNORED,
                error=None if parsed.known else "unknown event",
                body_sha256=received.sha256,
                body_size=received.size,
            )
            retry = claimed and stored.outcome in _RETRY_HANDOFF
            handing_off = retry and self._queued < self.handoff_queue
            if handing_off:
                self._queued += 1  # reserved now, so a burst cannot overshoot the queue
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
            elif retry and not handing_off:
                logger.warning("%s -> left for the replay (handoff queue full)", label)
        else:
            status = "ignored"
            logger.info("%s -> ignored (unknown event)", label)
        background = None
        if handing_off:
            background = BackgroundTask(self._spawn, parsed, stored.inbox_id, key)
        return JSONResponse(
            {"status": status, "inbox_id": stored.inbox_id}, 202, background=background
        )

    async def _read(self, request: Request, limit: int) -> _Received:
        """The body, or (as soon as it grows past ``limit``) the bytes read so far, hashed."""
        body = bytearray()
        digest = hashlib.sha256()
        async for chunk in request.stream():
            body += chunk
            digest.update(chunk)
            if len(body) > limit:
                return _Received(bytes(body), len(body), digest.hexdigest(), complete=False)
        return _Received(bytes(body), len(body), digest.hexdigest(), complete=True)

    def _signed(self, request: Request, body: bytes) -> bool:
        assert self._hmac_key is not None
        given = request.headers.get(SIGNATURE_HEADER, "")
        expected = "sha256=" + hmac.new(self._hmac_key, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(given.strip().lower().encode(), expected.encode())

    async def _reject(
        self, received: _Received, headers: dict[str, str], *, key: str, error: str
    ) -> Stored:
        """Store a refused delivery: its hash, size and first :data:`REJECTED_PREFIX` bytes."""
        return await self._store(
            dedup_key=key,
            body=received.data[:REJECTED_PREFIX],
            headers=headers,
            outcome=EventOutcome.REJECTED,
            error=error,
            body_sha256=received.sha256,
            body_size=received.size,
        )

    async def _too_large(self, headers: dict[str, str], received: _Received, size: str) -> Response:
        note = f"{size}, over the limit of {self.max_bytes}; kept: the first bytes read"
        key = f"oversized:{uuid.uuid4().hex}"
        stored = await self._reject(received, headers, key=key, error=f"body too large: {note}")
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
        if self.handoff is None:  # pragma: no cover - only reserved when there is a handoff
            return
        task = asyncio.create_task(self._run(parsed, inbox_id, key), name=f"handoff-{inbox_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, parsed: ParsedEvent, inbox_id: int, key: str) -> str:
        assert self.handoff is not None
        try:
            async with self._slots:
                return await hand_off(
                    self.engine,
                    self.handoff,
                    parsed.with_inbox_id(inbox_id),
                    scrub=self._scrub,
                    retry_after=self.retry_after,
                )
        finally:
            self._queued -= 1
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
    handoff_queue: int = 64,
    retry_after: float = 30.0,
    signup: Route | None = None,
) -> Starlette:
    """The receiver as an ASGI app; with ``handoff=None`` events are stored and left unhandled.

    At most ``max_handoffs`` handoffs run at once and ``handoff_queue`` are held in memory (the
    rest wait in the inbox for the replay); ``drain_timeout`` is how long shutdown waits for them
    before cancelling. A failed handoff may be replayed ``retry_after`` seconds later.
    """
    if not token.get_secret_value():
        raise ValueError("the webhook token must not be empty")
    if max_bytes < 1:
        raise ValueError("max_bytes must be positive")
    if handoff_queue < 1 or max_handoffs < 1:
        raise ValueError("handoff_queue and max_handoffs must be positive")
    receiver = _Receiver(
        engine=engine,
        token=token,
        handoff=handoff,
        max_bytes=max_bytes,
        hmac_secret=hmac_secret,
        drain_timeout=drain_timeout,
        max_handoffs=max_handoffs,
        handoff_queue=handoff_queue,
        retry_after=retry_after,
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
