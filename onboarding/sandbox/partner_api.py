"""The simulated Partner API, mounted at ``/api/v2``: auth, list calls, API keys, webhook URL.

:class:`PartnerGate` wraps the router: it counts every request by route template and applies
queued faults before the request reaches a handler.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route, Router
from starlette.types import Receive, Scope, Send

from onboarding.sandbox.errors import ApiError, error_response, json_body
from onboarding.sandbox.models import MESSAGING_API_URL, new_id
from onboarding.sandbox.query import QueryError, parse_query, run_query
from onboarding.sandbox.state import PERMISSION_MESSAGE, Partner, SandboxState

__all__ = ["PartnerGate", "partner_router"]


def _state(request: Request) -> SandboxState:
    return request.app.state.sandbox


def _caller(request: Request) -> Partner:
    """The partner whose credentials the request carries, or 401."""
    state = _state(request)
    api_key = request.headers.get("x-api-key")
    if api_key:
        partner = state.partner_for_api_key(api_key)
        if partner is None:
            raise ApiError(401, "Invalid API key")
        return partner
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        partner = state.partner_for_token(token.strip())
        if partner is None:
            raise ApiError(401, "Invalid or expired token")
        return partner
    raise ApiError(401, "Missing credentials: send X-API-Key or Authorization: Bearer")


def _authorize(request: Request) -> str:
    """The path's partner id, once the caller has proven it may act for it (401/403 otherwise)."""
    partner_id = unquote(request.path_params["partner_id"])
    if _caller(request).id != partner_id:
        raise ApiError(403, f"Not allowed to access partner {partner_id}")
    return partner_id


async def token(request: Request) -> Response:
    """``POST /token``: the deprecated username/password login."""
    body = await json_body(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ApiError(400, "username and password are required")
    issued = _state(request).issue_token(username, password)
    if issued is None:
        raise ApiError(401, "Invalid username or password")
    access_token, expires_in = issued
    state = _state(request)
    answer: dict[str, Any] = {"access_token": access_token, "token_type": state.token_type}
    if state.send_expires_in:
        answer["expires_in"] = expires_in
    return JSONResponse(answer)


async def partner(request: Request) -> Response:
    """``GET /partners/{partner_id}``."""
    partner_id = _authorize(request)
    return JSONResponse(_state(request).partners[partner_id].to_json())


def _list(request: Request, items: list[dict[str, Any]], key: str) -> Response:
    state = _state(request)
    try:
        query = parse_query(request.query_params, max_limit=state.max_limit)
    except QueryError as exc:
        raise ApiError(400, str(exc)) from None
    total, page = run_query(items, query)
    return JSONResponse(
        {
            "count": len(page),
            "total": total,
            "limit": query.limit,
            "offset": query.offset,
            "filters": query.filters,
            "sort": query.raw_sort,
            key: page,
        }
    )


async def channels(request: Request) -> Response:
    """``GET /partners/{partner_id}/channels``."""
    partner_id = _authorize(request)
    items = [c for c in _state(request).channels.values() if c["partner_id"] == partner_id]
    return _list(request, items, "partner_channels")


async def clients(request: Request) -> Response:
    """``GET /partners/{partner_id}/clients``."""
    partner_id = _authorize(request)
    items = [c for c in _state(request).clients.values() if c["partner_id"] == partner_id]
    return _list(request, items, "clients")


async def create_api_key(request: Request) -> Response:
    """``POST /partners/{partner_id}/channels/{channel_id}/api_keys``: a new Messaging API key."""
    partner_id = _authorize(request)
    state = _state(request)
    channel_id = unquote(request.path_params["channel_id"])
    channel = state.channels.get(channel_id)
    if channel is None or channel["partner_id"] != partner_id:
        raise ApiError(404, f"Channel {channel_id} not found")
    refusal = state.permission_pending.get(channel_id)
    if refusal is not None:
        state.api_key_refusals[channel_id] += 1
        raise ApiError(refusal, PERMISSION_MESSAGE)
    state.api_key_counts[channel_id] += 1
    key_id = new_id("AK")
    state.active_api_keys[channel_id] = key_id  # the channel's earlier keys stop working
    value = secrets.token_urlsafe(24)
    state.issue_channel_key(channel_id, value)
    # The sandbox serves the Messaging API side too: the key's address is the sandbox itself.
    address = f"{request.url.scheme}://{request.url.netloc}"
    return JSONResponse(_key_body(state.key_shape, key_id, channel_id, value, address), 201)


def _key_body(
    shape: str, key_id: str, channel_id: str, value: str, address: str = MESSAGING_API_URL
) -> dict[str, Any]:
    """A new key in ``shape`` (see :data:`~onboarding.sandbox.state.KEY_SHAPES`)."""
    key = {
        "id": key_id,
        "address": address,
        "api_key": value,
        "app_id": "app-" + channel_id,
    }
    if shape == "wrapped":
        return {"api_keys": [key]}
    if shape == "key":
        key["key"] = key.pop("api_key")
    return key


async def webhook_url(request: Request) -> Response:
    """``GET``/``POST /partners/{partner_id}/webhook_url``."""
    partner_id = _authorize(request)
    record = _state(request).partners[partner_id]
    if request.method == "POST":
        url = (await json_body(request)).get("webhook_url")
        if url is not None and not (
            isinstance(url, str) and url.startswith(("http://", "https://"))
        ):
            raise ApiError(400, "webhook_url must be an http(s) URL or null")
        record.webhook_url = url
    return JSONResponse({"webhook_url": record.webhook_url})


def partner_router() -> Router:
    """The Partner API routes (paths relative to ``/api/v2``)."""
    return Router(
        [
            Route("/token", token, methods=["POST"]),
            Route("/partners/{partner_id}", partner, methods=["GET"]),
            Route("/partners/{partner_id}/channels", channels, methods=["GET"]),
            Route("/partners/{partner_id}/clients", clients, methods=["GET"]),
            Route(
                "/partners/{partner_id}/channels/{channel_id}/api_keys",
                create_api_key,
                methods=["POST"],
            ),
            Route("/partners/{partner_id}/webhook_url", webhook_url, methods=["GET", "POST"]),
        ]
    )


class PartnerGate:
    """ASGI wrapper: count the request, then apply the first queued fault that matches it."""

    def __init__(self, router: Router, state: SandboxState) -> None:
        self.router = router
        self.state = state

    def _template(self, scope: Scope) -> str:
        """The route template the request matches (its path when none does)."""
        for route in self.router.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE and isinstance(route, Route):
                return route.path
        return scope["path"].removeprefix(scope.get("root_path", ""))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count, maybe fault, then hand over to the router."""
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        method = scope["method"]
        self.state.count_request(f"{method} {self._template(_on_raw_path(scope))}")
        fault = self.state.faults.take(method, scope["path"])
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        elif fault is not None and fault.kind == "malformed":
            await Response(fault.body, 200, media_type="text/html")(scope, receive, send)
            return
        elif fault is not None:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            message = f"Injected fault: HTTP {fault.http_status}"
            response = error_response(fault.http_status, message, headers=headers)
            await response(scope, receive, send)
            return
        await self.router(_on_raw_path(scope), receive, send)


def _on_raw_path(scope: Scope) -> Scope:
    """``scope`` routed on its path as sent, so an id holding an encoded ``/`` (``%2F``) stays
    one path segment, as on the real Partner API; the handlers decode the path parameters.
    """
    raw = scope.get("raw_path")
    if not raw:
        return scope
    return {**scope, "path": raw.decode("latin-1").split("?", 1)[0]}
