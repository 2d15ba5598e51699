"""The sandbox's Messaging API side: ``POST /v1/configs/webhook`` with a channel's own key.

Key creation answers with the sandbox's own address, so a product pointed at the sandbox sets
the number's webhook here. The request must carry ``D360-API-KEY`` with the channel's working key
(an earlier, revoked key gets 401); the body must be ``{"url": "http(s)://...", "headers":
{...}}`` (``headers`` optional). What was set is kept per channel and read back through the
control API (``GET /sandbox/channel_webhooks``). Requests are counted and faults apply, as on the
Partner API side (:class:`~onboarding.sandbox.partner_api.PartnerGate`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router

from onboarding.sandbox.errors import ApiError, json_body
from onboarding.sandbox.state import SandboxState

__all__ = ["messaging_router"]


async def configs_webhook(request: Request) -> Response:
    """``POST /v1/configs/webhook``: set the webhook of the channel whose key is sent."""
    state: SandboxState = request.app.state.sandbox
    key = request.headers.get("d360-api-key", "")
    channel_id = state.channel_for_key(key) if key else None
    if channel_id is None:
        raise ApiError(401, "Invalid D360-API-KEY")
    body = await json_body(request)
    url = body.get("url")
    if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise ApiError(400, "url must be an http(s) URL")
    headers = body.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ApiError(400, "headers must be an object of strings")
    state.channel_webhooks[channel_id] = {
        "channel_id": channel_id,
        "url": url,
        "headers": headers,
        "set_at": state.now(),
        "key_id": state.active_api_keys.get(channel_id),
    }
    return JSONResponse({"url": url})


def messaging_router() -> Router:
    """The Messaging API routes the sandbox serves (paths relative to ``/v1``)."""
    return Router([Route("/configs/webhook", configs_webhook, methods=["POST"])])
