"""Rotating a channel's key on purpose: create a new one and deliver it, signed, at once.

Creating a key revokes the channel's existing keys, so nothing else in the product creates one for
a channel it did not onboard; this is the person's explicit way to do it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from onboarding.callback import CallbackError, deliver_completion
from onboarding.runtime import history_engine, hub_client, partner_id, settings
from onboarding.store import find_runs, record_step, session_scope
from onboarding.tls import tls_context

__all__ = ["REKEY_STEP", "RekeyFailed", "rekey_channel"]

REKEY_STEP = "rekey"


class RekeyFailed(Exception):
    """The new key was created but not delivered, or there is nowhere to deliver it."""


async def rekey_channel(channel_id: str) -> str:
    """Create the channel's new key and POST it to the partner's callback; one line of result.

    The key is in memory only between the two calls; the history records that a rotation
    happened (key id, callback status), never the key.
    """
    config = settings()
    if not config.callback_url or config.callback_secret is None:
        raise RekeyFailed("ONBOARDING_CALLBACK_URL is not set: there is nowhere to deliver a key")
    async with hub_client() as hub:
        channel = await hub.get_channel(channel_id)
        key = await hub.create_channel_api_key(channel_id)
    payload = {
        "event": "onboarding.completed",
        "rekey": True,
        "partner_id": partner_id(),
        "client_id": channel.client_id,
        "channel_id": channel.id,
        "availability_status": channel.availability_status,
        "phone_number": channel.phone_number,
        "api_key": key.api_key.get_secret_value(),
        "api_key_id": key.id,
        "completed_at": datetime.now(UTC).isoformat(),
    }
    try:
        async with httpx.AsyncClient(timeout=config.callback_timeout, verify=tls_context()) as http:
            status = await deliver_completion(
                http, url=config.callback_url, secret=config.callback_secret, payload=payload
            )
    except CallbackError as exc:
        _record(channel_id, "failed", {"api_key_id": key.id, "error": str(exc)})
        raise RekeyFailed(
            f"the new key was created (the old one no longer works) but not delivered: {exc}; "
            "run `onboarding rekey` again once the callback answers"
        ) from None
    _record(channel_id, "done", {"api_key_id": key.id, "callback_status": status})
    return f"channel {channel_id}: new key delivered (callback answered {status})"


def _record(channel_id: str, outcome: str, detail: dict[str, object]) -> None:
    """Note the rotation on the channel's latest onboarding run, if it has one."""
    with session_scope(history_engine()) as session:
        runs = find_runs(session, channel_id=channel_id, limit=1)
        if runs and runs[0].id is not None:
            record_step(session, run_id=runs[0].id, step=REKEY_STEP, outcome=outcome, detail=detail)
