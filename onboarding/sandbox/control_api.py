"""The control API under ``/sandbox/``: script channels, inject faults, read counters and webhooks.

Every route but ``/sandbox/healthz`` needs the header ``X-Sandbox-Admin-Key``.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from onboarding.sandbox.errors import ApiError, json_body
from onboarding.sandbox.faults import Fault
from onboarding.sandbox.lifecycle import schedule_grant, schedule_settle, schedule_status
from onboarding.sandbox.signup import follow_redirect, redirect_url
from onboarding.sandbox.state import KEY_SHAPES, SANDBOX_PARTNER_ID, TUNABLE, Json, SandboxState

__all__ = ["control_routes"]

ADMIN_HEADER = "x-sandbox-admin-key"


def _admin(request: Request) -> SandboxState:
    """The sandbox state, once the admin key checks out (401 otherwise)."""
    state: SandboxState = request.app.state.sandbox
    given = request.headers.get(ADMIN_HEADER, "")
    if not secrets.compare_digest(given.encode(), state.admin_key.encode()):
        raise ApiError(401, "Missing or wrong X-Sandbox-Admin-Key")
    return state


async def _body(request: Request) -> dict[str, Any]:
    return await json_body(request) if await request.body() else {}


def _partner_id(state: SandboxState, body: dict[str, Any]) -> str:
    partner_id = body.get("partner_id") or SANDBOX_PARTNER_ID
    if partner_id not in state.partners:
        raise ApiError(404, f"Partner {partner_id} not found")
    return partner_id


def _settle_args(body: dict[str, Any]) -> tuple[float | None, str]:
    after, to = body.get("settle_after"), body.get("settle_to", "ready")
    if after is not None and not isinstance(after, int | float):
        raise ApiError(400, "settle_after must be a number of seconds or null")
    if to not in ("ready", "error"):
        raise ApiError(400, 'settle_to must be "ready" or "error"')
    return after, to


def _permission_args(body: dict[str, Any]) -> tuple[int | None, float | None]:
    """``needs_permission`` (true/403/400) as the refusal status, and ``grant_permission_after``."""
    needs, after = body.get("needs_permission"), body.get("grant_permission_after")
    if needs is True:
        needs = 403
    elif needs in (False, None):
        needs = None
    elif needs not in (400, 403):
        raise ApiError(400, "needs_permission must be true, false, 403 or 400")
    if after is not None and (needs is None or not isinstance(after, int | float)):
        raise ApiError(400, "grant_permission_after needs needs_permission and a number")
    return needs, after


def _new_channel(state: SandboxState, client: Json, body: dict[str, Any], **extra: Any) -> Json:
    """One channel from a control body: settle timer and client permission included."""
    after, to = _settle_args(body)
    needs, grant_after = _permission_args(body)
    channel = state.create_channel(
        client=client,
        availability_status=body.get("availability_status", "setting_up"),
        needs_permission=needs,
        send_webhook=bool(body.get("send_webhook", True)),
        **extra,
    )
    if after is not None:
        schedule_settle(state, channel["id"], after=after, to=to, error=body.get("error"))
    if grant_after is not None:
        schedule_grant(state, channel["id"], after=grant_after)
    return channel


async def create_client(request: Request) -> Response:
    """``POST /sandbox/clients``."""
    state = _admin(request)
    body = await _body(request)
    client = state.create_client(
        partner_id=_partner_id(state, body),
        name=body.get("name"),
        email=body.get("email"),
        client_id=body.get("id"),
    )
    return JSONResponse(client, 201)


async def create_channel(request: Request) -> Response:
    """``POST /sandbox/channels``: one channel (and its client unless ``client_id`` is given).

    ``availability_status: null`` leaves the field out; ``needs_permission`` (true, 403 or 400)
    refuses key creation until the client grants permission (``grant_permission_after`` seconds,
    or ``POST /sandbox/channels/{id}/permission``).
    """
    state = _admin(request)
    body = await _body(request)
    partner_id = _partner_id(state, body)
    _settle_args(body)
    _permission_args(body)
    send_webhook = bool(body.get("send_webhook", True))
    if body.get("client_id") in state.clients:
        client = state.clients[body["client_id"]]
    else:
        client = state.create_client(
            partner_id=partner_id,
            client_id=body.get("client_id"),
            name=body.get("client_name"),
            send_webhook=send_webhook,
        )
    channel = _new_channel(
        state,
        client,
        body,
        channel_id=body.get("id"),
        phone_number=body.get("phone_number"),
        status=body.get("status"),
    )
    return JSONResponse(channel, 201)


async def grant_permission(request: Request) -> Response:
    """``POST /sandbox/channels/{id}/permission``: the client grants it now (200) or later (202)."""
    state = _admin(request)
    channel_id = request.path_params["channel_id"]
    if channel_id not in state.channels:
        raise ApiError(404, f"Channel {channel_id} not found")
    after = (await _body(request)).get("after")
    if after:
        if not isinstance(after, int | float):
            raise ApiError(400, "after must be a number of seconds")
        schedule_grant(state, channel_id, after=float(after))
        return JSONResponse({"scheduled_in": float(after), "channel_id": channel_id}, 202)
    return JSONResponse(state.grant_permission(channel_id))


async def signup(request: Request) -> Response:
    """``POST /sandbox/signup``: a client finishes the signup popup.

    Creates the client and ``channels`` channels (each like ``POST /sandbox/channels``: settle
    timer, ``needs_permission``, ``availability_status``), builds the partner redirect URL with
    ``?client=<id>&channels=[<id>,...]&revoked=...`` (``redirect_url`` overrides the partner's
    ``partner_redirect_url``), and with ``call: true`` GETs it the way the browser would.
    """
    state = _admin(request)
    body = await _body(request)
    partner = state.partners[_partner_id(state, body)]
    count = body.get("channels", 1)
    if not isinstance(count, int) or not 0 <= count <= 20:
        raise ApiError(400, "channels must be an integer from 0 to 20")
    revoked = body.get("revoked", [])
    if not isinstance(revoked, list) or not all(isinstance(item, str) for item in revoked):
        raise ApiError(400, "revoked must be a list of ids")
    base = body.get("redirect_url") or partner.partner_redirect_url
    if not isinstance(base, str) or not base.startswith(("http://", "https://")):
        raise ApiError(400, "redirect_url (or the partner's partner_redirect_url) must be http(s)")
    _settle_args(body)
    _permission_args(body)
    client = state.create_client(
        partner_id=partner.id,
        client_id=body.get("client_id"),
        name=body.get("client_name"),
        send_webhook=bool(body.get("send_webhook", True)),
    )
    ids = [_new_channel(state, client, body)["id"] for _ in range(count)]
    url = redirect_url(base, client_id=client["id"], channel_ids=ids, revoked=revoked)
    called = await follow_redirect(url) if body.get("call") else None
    answer = {"client_id": client["id"], "channel_ids": ids, "redirect_url": url, "called": called}
    return JSONResponse(answer, 201)


async def bulk_channels(request: Request) -> Response:
    """``POST /sandbox/channels/bulk``: ``count`` channels, each with its own client."""
    state = _admin(request)
    body = await _body(request)
    count = body.get("count")
    if not isinstance(count, int) or count < 0:
        raise ApiError(400, "count must be a non-negative integer")
    partner_id = _partner_id(state, body)
    _settle_args(body)
    _permission_args(body)
    body = {**body, "send_webhook": bool(body.get("send_webhook", False))}
    now = state.now()
    ids = []
    for _ in range(count):
        client = state.create_client(partner_id=partner_id, send_webhook=body["send_webhook"])
        ids.append(_new_channel(state, client, body, now=now)["id"])
    return JSONResponse({"ids": ids}, 201)


async def channel_status(request: Request) -> Response:
    """``POST /sandbox/channels/{id}/status``: change now (200) or ``after`` seconds (202).

    ``availability_status: null`` removes the field, as some real channels answer.
    """
    state = _admin(request)
    channel_id = request.path_params["channel_id"]
    if channel_id not in state.channels:
        raise ApiError(404, f"Channel {channel_id} not found")
    body = await _body(request)
    if "availability_status" in body and body["availability_status"] is None:
        # as some real channels answer: no availability_status at all
        state.channels[channel_id].pop("availability_status", None)
        return JSONResponse(state.channels[channel_id])
    changes = {
        "availability_status": body.get("availability_status"),
        "status": body.get("status"),
        "error": body.get("error"),
        "send_webhook": bool(body.get("send_webhook", True)),
    }
    after = body.get("after")
    if after:
        schedule_status(state, channel_id, after=float(after), **changes)
        return JSONResponse({"scheduled_in": float(after), "channel_id": channel_id}, 202)
    return JSONResponse(state.update_channel(channel_id, **changes))


async def channel(request: Request) -> Response:
    """``GET /sandbox/channels/{id}``: one channel, any partner."""
    state = _admin(request)
    found = state.channels.get(request.path_params["channel_id"])
    if found is None:
        raise ApiError(404, "Channel not found")
    return JSONResponse(found)


async def api_key_count(request: Request) -> Response:
    """``GET /sandbox/channels/{id}/api_keys``: how many keys the Partner API created for it,
    and the id of the one that works (creating a key revokes the channel's earlier ones)."""
    state = _admin(request)
    channel_id = request.path_params["channel_id"]
    return JSONResponse(
        {
            "count": state.api_key_counts[channel_id],
            "active_key_id": state.active_api_keys.get(channel_id),
            "refused": state.api_key_refusals[channel_id],
            "permission_pending": channel_id in state.permission_pending,
        }
    )


async def channel_webhooks(request: Request) -> Response:
    """``GET /sandbox/channel_webhooks``: what the Messaging API side set, by channel id."""
    return JSONResponse(dict(_admin(request).channel_webhooks))


async def faults(request: Request) -> Response:
    """``POST`` queues a fault (``duration``: timed), ``DELETE`` clears them, ``GET`` lists them."""
    state = _admin(request)
    if request.method == "DELETE":
        state.faults.clear()
        return Response(status_code=204)
    if request.method == "GET":
        return JSONResponse(state.faults.pending())
    body = await _body(request)
    if body.get("kind") not in ("status", "slow", "malformed"):
        raise ApiError(400, 'kind must be "status", "slow" or "malformed"')
    known = Fault.__dataclass_fields__.keys() - {"expires_at"}
    try:
        fault = Fault(**{key: value for key, value in body.items() if key in known})
    except TypeError as exc:
        raise ApiError(400, str(exc)) from None
    state.faults.add(fault)
    return JSONResponse(fault.describe(), 201)


async def requests(request: Request) -> Response:
    """``GET`` the Partner API request counts; ``DELETE`` zeroes them."""
    state = _admin(request)
    if request.method == "DELETE":
        state.reset_counts()
        return Response(status_code=204)
    return JSONResponse({"total": state.request_total, "counts": dict(state.request_counts)})


async def webhooks(request: Request) -> Response:
    """``GET /sandbox/webhooks``: every partner-webhook delivery since the last reset."""
    return JSONResponse(list(_admin(request).webhooks.deliveries))


def _check_config(key: str, value: Any) -> None:
    """400 unless ``value`` suits the config ``key``."""
    if key in ("token_expires_in", "max_limit"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ApiError(400, f"{key} must be a non-negative integer")
    elif key == "key_shape" and value not in KEY_SHAPES:
        raise ApiError(400, f"key_shape must be one of {', '.join(KEY_SHAPES)}")
    elif key == "token_type" and not (isinstance(value, str) and value):
        raise ApiError(400, "token_type must be a non-empty string")
    elif key == "send_expires_in" and not isinstance(value, bool):
        raise ApiError(400, "send_expires_in must be true or false")
    elif key in ("running_after", "live_after"):
        number = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        if not (number or (key == "live_after" and value is None)):
            raise ApiError(400, f"{key} must be a non-negative number of seconds")


async def config(request: Request) -> Response:
    """``POST /sandbox/config``: change how the sandbox answers until the next reset.

    ``token_expires_in``, ``max_limit``, ``key_shape`` (flat|wrapped|key), ``token_type``
    (e.g. ``bearer``), ``send_expires_in``, ``running_after`` and ``live_after`` (seconds after
    ``channel_ready`` that ``channel_running``/``channel_live`` follow; ``live_after`` null: never).
    """
    state = _admin(request)
    body = await _body(request)
    for key in TUNABLE:
        if key in body:
            _check_config(key, body[key])
            setattr(state, key, body[key])
    return JSONResponse({key: getattr(state, key) for key in TUNABLE})


async def webhook_url(request: Request) -> Response:
    """``POST /sandbox/webhook_url``: set a partner's webhook URL without counting a request."""
    state = _admin(request)
    body = await _body(request)
    partner = state.partners[_partner_id(state, body)]
    partner.webhook_url = body.get("webhook_url")
    return JSONResponse(partner.to_json())


async def reset(request: Request) -> Response:
    """``POST /sandbox/reset``: back to the seeded partners."""
    _admin(request).reset()
    return JSONResponse({"reset": True})


async def healthz(request: Request) -> Response:
    """``GET /sandbox/healthz``: no key needed."""
    return JSONResponse({"ok": True})


def control_routes() -> list[Route]:
    """The control API routes (full paths)."""
    return [
        Route("/sandbox/healthz", healthz, methods=["GET"]),
        Route("/sandbox/reset", reset, methods=["POST"]),
        Route("/sandbox/config", config, methods=["POST"]),
        Route("/sandbox/clients", create_client, methods=["POST"]),
        Route("/sandbox/channels", create_channel, methods=["POST"]),
        Route("/sandbox/channels/bulk", bulk_channels, methods=["POST"]),
        Route("/sandbox/channels/{channel_id}", channel, methods=["GET"]),
        Route("/sandbox/channels/{channel_id}/status", channel_status, methods=["POST"]),
        Route("/sandbox/channels/{channel_id}/api_keys", api_key_count, methods=["GET"]),
        Route("/sandbox/channels/{channel_id}/permission", grant_permission, methods=["POST"]),
        Route("/sandbox/signup", signup, methods=["POST"]),
        Route("/sandbox/channel_webhooks", channel_webhooks, methods=["GET"]),
        Route("/sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/sandbox/requests", requests, methods=["GET", "DELETE"]),
        Route("/sandbox/webhooks", webhooks, methods=["GET"]),
        Route("/sandbox/webhook_url", webhook_url, methods=["POST"]),
    ]
