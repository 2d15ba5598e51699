"""The signup redirect: ``GET /signup/360dialog?client=<id>&channels=[<id>,...]&revoked=...``.

When a client finishes 360dialog's signup popup, their browser is sent to the partner's redirect
URL with the new channels in a bracketed list that is *not* JSON (``channels=[a1,b2]``). This is
the earliest signal of a new channel, and the least trusted one: anyone's browser can call it, so
it carries no secret and every id is checked with the Partner API before it counts.

What a request gets, in the order it is checked:

=========================================  ======  ============================================
request                                    answer  inbox rows
=========================================  ======  ============================================
over ``rate_limit`` per client IP/minute   303     none (nothing verified; the sweep and the
                                                   webhooks still find the channels)
malformed ``client`` or an oversized query 303     one ``rejected`` row saying why
over ``api_budget`` (all signups, per      303     the request row, ``ignored``: "not verified"
minute)                                            (the sweep and the webhooks find the channels)
otherwise                                  303     one request row (``accepted``), then per id:
                                                   verified -> a ``signup_redirect`` row handed
                                                   to the handoff; malformed, not the client's
                                                   -> named in the request row's ``error``, not
                                                   acted on
the same query again                       303     nothing new (rows are de-duplicated)
=========================================  ======  ============================================

The client IP is the TCP peer. Only when the peer is one of ``trusted_proxies``
(``ONBOARDING_TRUSTED_PROXIES``) is ``X-Forwarded-For`` read: from the right, the first address
that is not a trusted proxy is the client. Otherwise the header is ignored, so a caller cannot
choose the address its requests are counted under.

Verifying a request costs at most :data:`MAX_CALLS` Partner API calls however many ids it names:
one list of the client's channels (``filters={"client_id": ...}``) and, only if that list has a
second page, that page. All requests together spend at most ``api_budget`` calls a minute
(``ONBOARDING_SIGNUP_API_BUDGET``), so forged signups cannot use up the partner's API quota.

The browser always gets the same answer, a ``303`` to ``redirect`` with the query string as it
came (or, with no ``redirect``, a small page saying the number is being set up): a client must
never be stranded on an error page because of us, and a forger learns nothing from the answer.
Throttled requests get it too, instead of a ``429`` the client's browser would show as an error.
Verification and the handoff run after the answer is sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import ipaddress
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from anyio import to_thread
from sqlalchemy import Engine
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from onboarding.hub import Channel, HubClient, HubError
from onboarding.receiver.events import Handoff, HandoffEvent
from onboarding.receiver.handling import hand_off, mark, one_line, store
from onboarding.settings import HubSettings
from onboarding.store import EventOutcome

__all__ = [
    "EVENT",
    "MAX_CALLS",
    "MAX_CHANNELS",
    "SIGNUP_PATH",
    "TokenBucket",
    "client_address",
    "hub_factory",
    "parse_channel_list",
    "signup_route",
]

logger = logging.getLogger("onboarding.receiver")

SIGNUP_PATH = "/signup/360dialog"
EVENT = "signup_redirect"
MAX_CHANNELS = 20  # ids verified per request; more are refused as "too many"
MAX_CALLS = 2  # Partner API calls one request's verification may cost, whatever its ids
MAX_QUERY = 4096  # bytes of query string kept; a longer one is refused (and not stored)
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_KEPT_HEADERS = ("user-agent", "referer")
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Almost there</title></head>
<body><h1>Thank you!</h1>
<p>Your WhatsApp number is being set up. You can close this window; we will be in touch.</p>
<p><small>Reference: {client}</small></p></body></html>
"""

HubFactory = Callable[[], HubClient]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_BUDGET_KEY = "partner"
NOT_VERIFIED = "not verified: ONBOARDING_SIGNUP_API_BUDGET spent; the sweep finds the channels"


def parse_channel_list(raw: str | None) -> tuple[list[str], list[str]]:
    """``channels=[a,b]`` read leniently: ``(valid ids, refused values)``, each once, in order.

    Brackets are stripped, the rest split on commas and trimmed, empties dropped. An id must be
    1-64 letters, digits, ``_`` or ``-``; beyond :data:`MAX_CHANNELS` ids are refused.
    """
    text = (raw or "").strip().removeprefix("[").removesuffix("]")
    valid: list[str] = []
    refused: list[str] = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part or part in valid or part in refused:
            continue
        if _ID.match(part) and len(valid) < MAX_CHANNELS:
            valid.append(part)
        else:
            refused.append(part)
    return valid, refused


class TokenBucket:
    """Per-key token buckets: ``rate`` requests a minute, bursts up to ``rate``; bounded memory."""

    def __init__(
        self, rate: int, *, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._capacity = float(rate)
        self._per_second = rate / 60.0
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens from ``key``'s bucket; False (nothing taken) when it has fewer."""
        now = self._clock()
        tokens, since = self._buckets.pop(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - since) * self._per_second)
        allowed = tokens >= cost
        self._buckets[key] = (tokens - cost if allowed else tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)  # the least recently seen key starts afresh
        return allowed


def _is_trusted(address: str, trusted: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(request: Request, trusted: list[Network]) -> str:
    """The address a signup request is counted under: the peer, or what a trusted proxy says.

    ``X-Forwarded-For`` is read only when the TCP peer is in ``trusted``; then the right-most
    address that is not itself a trusted proxy is the client (a malformed one: the peer).
    """
    peer = request.client.host if request.client else "unknown"
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    hops = [
        hop.strip()
        for value in request.headers.getlist("x-forwarded-for")
        for hop in value.split(",")
        if hop.strip()
    ]
    client = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return client
        client = hop
        if not _is_trusted(hop, trusted):
            return hop
    return client


def _belongs(channel: Channel, client: str) -> bool:
    return channel.client_id == client or (
        channel.client is not None and channel.client.id == client
    )


def _shown(value: str) -> str:
    """A refused value as it may appear in a record: cut short, repr-quoted."""
    return repr(value[:64] + ("..." if len(value) > 64 else ""))


class _Signup:
    """The endpoint's state: inbox engine, handoff, Partner API access, limits."""

    def __init__(
        self,
        *,
        engine: Engine,
        handoff: Handoff | None,
        hub: HubFactory,
        redirect: str | None,
        rate_limit: int,
        max_verifying: int,
        api_budget: int,
        trusted_proxies: list[Network],
    ) -> None:
        self.engine = engine
        self.handoff = handoff
        self.hub = hub
        self.redirect = redirect
        self.bucket = TokenBucket(rate_limit)
        self.api_budget = TokenBucket(api_budget)
        self.trusted = trusted_proxies
        self._slots = asyncio.Semaphore(max_verifying)
        self._throttled_logged: dict[str, float] = {}

    async def endpoint(self, request: Request) -> Response:
        """Answer at once; store, verify and hand on after (see the module docstring)."""
        query = request.scope.get("query_string", b"").decode("latin-1")
        ip = client_address(request, self.trusted)
        if not self.bucket.allow(ip):
            self._log_once(ip, "rate limit reached for one client IP; answering without acting")
            return self._answer(query, client=None)
        headers = {
            name: request.headers[name][:300] for name in _KEPT_HEADERS if name in request.headers
        }
        if len(query) > MAX_QUERY:
            await self._record_refused(query[:MAX_QUERY], headers, "query string too long")
            return self._answer("", client=None)
        params = parse_qs(query, keep_blank_values=True)
        client = (params.get("client") or [""])[0].strip()
        if not _ID.match(client):
            await self._record_refused(query, headers, "malformed or missing client id")
            return self._answer(query, client=None)
        valid, refused = parse_channel_list((params.get("channels") or [""])[0])
        body = _envelope({"client": client, "channels": valid, "refused": refused, "query": query})
        stored = await to_thread.run_sync(
            lambda: store(
                self.engine,
                dedup_key=f"{EVENT}:" + hashlib.sha256(query.encode()).hexdigest(),
                body=body,
                headers=headers,
                event_type=EVENT,
                client_id=client,
            )
        )
        background = None
        if stored.stored_now:
            refusals = [f"{_shown(value)} (malformed id)" for value in refused]
            background = BackgroundTask(self._verify, stored.inbox_id, client, valid, refusals)
        return self._answer(query, client=client, background=background)

    # -- after the answer -----------------------------------------------------------------------

    async def _verify(
        self, request_id: int, client: str, channel_ids: list[str], refusals: list[str]
    ) -> None:
        """:meth:`_verify_all`; an unexpected failure is logged (the row stays ``accepted``)."""
        try:
            await self._verify_all(request_id, client, channel_ids, refusals)
        except Exception as exc:
            logger.warning("inbox #%d %s not processed: %s", request_id, EVENT, one_line(exc))

    async def _verify_all(
        self, request_id: int, client: str, channel_ids: list[str], refusals: list[str]
    ) -> None:
        """Verify the ids (at most :data:`MAX_CALLS` calls), hand on the good ones."""
        handed = 0
        outcome, error = EventOutcome.HANDLED, None
        try:
            if channel_ids and not self.api_budget.allow(_BUDGET_KEY):
                outcome = EventOutcome.IGNORED
                error = "; ".join([NOT_VERIFIED, *(f"refused: {r}" for r in refusals)])
                self._log_once("budget", "Partner API budget for signups spent; not verifying")
            elif channel_ids:
                async with self._slots, self.hub() as hub:
                    found, complete = await self._client_channels(hub, client, channel_ids)
                for channel_id in channel_ids:
                    channel = found.get(channel_id)
                    if channel is not None and _belongs(channel, client):
                        await self._hand_on(request_id, client, channel)
                        handed += 1
                        continue
                    why = "not a channel of this client" if complete else "not verified: list cut"
                    refusals.append(f"{_shown(channel_id)} ({why})")
        except HubError as exc:
            outcome, error = EventOutcome.FAILED, f"Partner API: {one_line(exc)}"
        if outcome is EventOutcome.HANDLED:
            if not handed:
                outcome = EventOutcome.REJECTED if refusals else EventOutcome.IGNORED
            error = ("refused: " + "; ".join(refusals)) if refusals else None
            if not channel_ids and not refusals:
                error = "no channel ids"
        await to_thread.run_sync(
            lambda: mark(
                self.engine, inbox_id=request_id, outcome=outcome, error=error and error[:500]
            )
        )
        logger.info(
            "inbox #%d %s client=%s: %d handed on, %d refused",
            request_id,
            EVENT,
            client,
            handed,
            len(refusals),
        )

    async def _client_channels(
        self, hub: HubClient, client: str, wanted: list[str]
    ) -> tuple[dict[str, Channel], bool]:
        """The client's channels among ``wanted``, and whether the list was read to its end.

        One list call of the client's channels; a second page only if the first did not hold
        every wanted id and the list goes on, and the budget has a call left.
        """
        found: dict[str, Channel] = {}
        offset = 0
        for call in range(MAX_CALLS):
            if call and not self.api_budget.allow(_BUDGET_KEY):
                return found, False
            page = await hub.list_channels(filters={"client_id": client}, offset=offset)
            found.update((c.id, c) for c in page.items if c.id in wanted)
            offset += len(page.items)
            ended = not page.items or page.total is None or offset >= page.total
            if ended or all(channel_id in found for channel_id in wanted):
                return found, ended
        return found, False

    async def _hand_on(self, request_id: int, client: str, channel: Channel) -> None:
        """Record one verified channel and hand it on (no Partner API call)."""
        channel_id = channel.id
        data = channel.model_dump(mode="json", exclude_none=False)
        stored = await to_thread.run_sync(
            lambda: store(
                self.engine,
                dedup_key=f"{EVENT}:{client}:{channel_id}",
                body=_envelope({**data, "channel_id": channel_id}),
                headers={"x-signup-request": str(request_id)},
                event_type=EVENT,
                channel_id=channel_id,
                client_id=client,
            )
        )
        if self.handoff is not None and stored.outcome in (
            EventOutcome.ACCEPTED,
            EventOutcome.FAILED,
        ):
            event = HandoffEvent(
                inbox_id=stored.inbox_id,
                event_type=EVENT,
                channel_id=channel_id,
                client_id=client,
                data=data,
            )
            await hand_off(self.engine, self.handoff, event)

    # -- helpers --------------------------------------------------------------------------------

    def _answer(
        self, query: str, *, client: str | None, background: BackgroundTask | None = None
    ) -> Response:
        """The one answer every request gets: 303 to ``redirect`` with the query, or the page."""
        if self.redirect:
            joiner = "&" if "?" in self.redirect else "?"
            location = f"{self.redirect}{joiner}{query}" if query else self.redirect
            return RedirectResponse(location, status_code=303, background=background)
        page = _PAGE.format(client=html.escape(client or "-"))
        return HTMLResponse(page, background=background, headers={"Cache-Control": "no-store"})

    async def _record_refused(self, query: str, headers: dict[str, str], why: str) -> None:
        """Keep a refused request (bounded) with the reason; never acted on."""
        key = f"{EVENT}:refused:" + hashlib.sha256(query.encode()).hexdigest()
        body = _envelope({"query": query})
        await to_thread.run_sync(
            lambda: store(
                self.engine,
                dedup_key=key,
                body=body,
                headers=headers,
                event_type=EVENT,
                outcome=EventOutcome.REJECTED,
                error=why,
            )
        )
        logger.info("%s refused: %s", EVENT, why)

    def _log_once(self, key: str, what: str) -> None:
        """One warning per ``key`` (an IP, or the budget) a minute, however often it happens."""
        now = time.monotonic()
        if now - self._throttled_logged.get(key, -60.0) >= 60.0:
            if len(self._throttled_logged) > 1000:
                self._throttled_logged.clear()
            self._throttled_logged[key] = now
            logger.warning("%s: %s", EVENT, what)


def _envelope(data: dict[str, Any]) -> str:
    """The stored body: a webhook-like envelope, so inbox readers see one shape."""
    return json.dumps({"event": EVENT, "data": data}, separators=(",", ":"), default=str)


def hub_factory(settings: HubSettings) -> HubFactory:
    """A ``hub`` for :func:`signup_route`: a fresh client from ``settings`` per request."""
    settings.require_credentials()
    # No waiting out a 429 with more requests: a signup's calls stay within MAX_CALLS.
    return lambda: HubClient.from_settings(settings, max_rate_limit_waits=0)


def signup_route(
    *,
    engine: Engine,
    handoff: Handoff | None,
    hub: HubFactory,
    redirect: str | None = None,
    rate_limit: int = 30,
    max_verifying: int = 8,
    api_budget: int = 60,
    trusted_proxies: list[Network] | None = None,
) -> Route:
    """``GET /signup/360dialog`` as a Starlette route (see the module docstring).

    ``hub`` builds a :class:`~onboarding.hub.HubClient` used as an async context manager, one per
    request; ``redirect`` is ``ONBOARDING_SIGNUP_REDIRECT``; ``rate_limit`` is requests per
    client IP a minute; ``api_budget`` is Partner API calls a minute for all requests together
    (``ONBOARDING_SIGNUP_API_BUDGET``); ``trusted_proxies`` are the proxies whose
    ``X-Forwarded-For`` is believed (``ONBOARDING_TRUSTED_PROXIES``; default none).
    """
    if rate_limit < 1:
        raise ValueError("rate_limit must be at least 1 request a minute")
    if api_budget < 1:
        raise ValueError("api_budget must be at least 1 call a minute")
    signup = _Signup(
        engine=engine,
        handoff=handoff,
        hub=hub,
        redirect=redirect,
        rate_limit=rate_limit,
        max_verifying=max_verifying,
        api_budget=api_budget,
        trusted_proxies=list(trusted_proxies or []),
    )
    return Route(SIGNUP_PATH, signup.endpoint, methods=["GET"])
