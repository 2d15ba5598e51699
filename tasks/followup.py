"""The follow-up once a channel is ready: create its Messaging API key and deliver it, signed.

A delivery recorded as done for the history run is never repeated (a woken, resumed or taken-over
flow run skips it), so a partner never receives two keys for one onboarding.

The one window no record can close is a process killed between creating the key and recording
the delivery (the key is a secret: it is never stored, so it cannot be re-sent). The step is
recorded as ``started`` before the key is created; a re-run that finds it ``started`` knows an
attempt was interrupted, says so in the log, and delivers a new key with ``attempt`` counting up.
Creating a key revokes the channel's earlier ones (as the 360dialog Hub documents), so the key the
partner last received is the one that works. For the same reason a delivery that failed is
retried later with a fresh key, never with the undelivered one.

With ``ONBOARDING_CHANNEL_WEBHOOK_URL`` set, the number's own webhook is set with the new key
before the callback (:mod:`tasks.channel_webhook`); when the Messaging API does not take it, the
delivery fails the same way (retried later with a fresh key) and the callback is not sent. The
callback body's ``channel_webhook`` says ``set`` or ``not_configured``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from onboarding.callback import CallbackError, deliver_completion
from onboarding.channel_webhook import ChannelWebhookError
from onboarding.history import Claim
from onboarding.hub import Channel, ChannelApiKey, HubClient
from onboarding.hub.errors import PermissionPending
from onboarding.runtime import history_engine, hub_client, settings
from onboarding.store import get_step, record_step, session_scope, step_done
from onboarding.tls import tls_context
from tasks.channel_webhook import ChannelWebhook, set_number_webhook_now
from tasks.channels import retry_if_transient

__all__ = ["NOTIFY_PARTNER", "Delivery", "notify_partner", "notify_partner_now"]

NOTIFY_PARTNER = "notify_partner"
QUICK_RETRY_FACTORS = [1, 5, 15]  # quick retries of one delivery, in ONBOARDING_RETRY_DELAY units

# A key created but not yet delivered, in memory only, so a quick retry of the same attempt
# re-sends that key instead of minting (and so revoking) another one.
_undelivered_keys: dict[int, tuple[ChannelApiKey, int]] = {}  # run id -> (key, attempt)


class Delivery(StrEnum):
    """How a delivery attempt ended."""

    DONE = "done"  # the partner's callback took the key (or there was nothing to deliver)
    REFUSED = "refused"  # the Partner API refused to create the key: no client permission yet
    FAILED = "failed"  # the key was created, the callback did not take it


def _retry_callback(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a callback that got no answer or a 5xx/429; and Partner API calls that may recover."""
    error = state.data
    if isinstance(error, CallbackError):
        return error.retryable
    return retry_if_transient(task, task_run, state)


def _attempts_begun(claim: Claim) -> int:
    """How many delivery attempts were recorded as started or failed (0 if none)."""
    with session_scope(history_engine()) as session:
        record = get_step(session, run_id=claim.run_id, step=NOTIFY_PARTNER)
    if record is None or record.outcome not in ("started", "failed"):
        return 0
    return int((record.detail or {}).get("attempt", 1))


def _record(claim: Claim, outcome: str, detail: dict[str, Any]) -> None:
    with session_scope(history_engine()) as session:
        record_step(
            session, run_id=claim.run_id, step=NOTIFY_PARTNER, outcome=outcome, detail=detail
        )


async def _create_key(claim: Claim, channel: Channel) -> tuple[ChannelApiKey, int]:
    """The key of this attempt: the one a quick retry already holds, or a fresh one."""
    held = _undelivered_keys.get(claim.run_id)
    if held is not None:
        return held
    attempt = _attempts_begun(claim) + 1
    if attempt > 1:
        get_run_logger().warning(
            "Delivering a new API key (attempt %s): it revokes any key an earlier attempt made",
            attempt,
        )
    _record(claim, "started", {"attempt": attempt})
    hub: HubClient
    async with hub_client() as hub:
        key = await hub.create_channel_api_key(channel.id)
    _undelivered_keys[claim.run_id] = (key, attempt)
    return key, attempt


@task(
    name="notify-partner",
    cache_policy=NO_CACHE,
    retries=len(QUICK_RETRY_FACTORS),
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_callback,
)
async def notify_partner(claim: Claim, channel: Channel) -> Delivery:
    """Create the channel's Messaging API key and POST it, signed, to the partner's callback.

    The key exists only in memory between the two calls: it is never logged or stored. Quick
    retries (a 5xx or no answer) re-send the same key; when they run out the attempt is
    recorded ``failed`` and the onboarding retries later with a fresh key.
    """
    logger = get_run_logger()
    with session_scope(history_engine()) as session:
        if step_done(session, run_id=claim.run_id, step=NOTIFY_PARTNER) is not None:
            logger.info("Partner already notified for this onboarding; skipping")
            return Delivery.DONE
    config = settings()
    if not config.callback_url:
        _record(claim, "skipped", {"reason": "ONBOARDING_CALLBACK_URL not set"})
        return Delivery.DONE
    assert config.callback_secret is not None  # settings validation guarantees it
    payload: dict[str, Any] = {
        "event": "onboarding.completed",
        "partner_id": claim.partner_id,
        "client_id": channel.client_id,
        "channel_id": channel.id,
        "availability_status": channel.availability_status,
        "phone_number": channel.phone_number,
        "completed_at": datetime.now(UTC).isoformat(),
    }
    detail: dict[str, Any] = {}
    if config.create_api_key:
        try:
            key, attempt = await _create_key(claim, channel)
        except PermissionPending as error:
            logger.info("The Partner API refused the key: %s", error)
            _record(claim, "refused", {"attempt": _attempts_begun(claim)})
            return Delivery.REFUSED
        detail.update(api_key_id=key.id, attempt=attempt)
        try:
            webhook = await set_number_webhook_now(claim, channel, key, attempt)
        except ChannelWebhookError as error:
            _undelivered_keys.pop(claim.run_id, None)
            _record(claim, "failed", {**detail, "error": f"number's webhook not set: {error}"})
            logger.warning("Key not delivered: the number's webhook was not set (%s)", error)
            return Delivery.FAILED
        payload |= {"api_key": key.api_key.get_secret_value(), "api_key_id": key.id}
        payload["attempt"] = attempt
        payload["channel_webhook"] = str(webhook)
    else:
        payload["channel_webhook"] = str(ChannelWebhook.NOT_CONFIGURED)
    try:
        async with httpx.AsyncClient(timeout=config.callback_timeout, verify=tls_context()) as http:
            status = await deliver_completion(
                http, url=config.callback_url, secret=config.callback_secret, payload=payload
            )
    except CallbackError as error:
        if error.retryable and _is_retry_left():
            raise  # a quick retry of this attempt, with the same key
        _undelivered_keys.pop(claim.run_id, None)
        _record(claim, "failed", {**detail, "error": str(error)})
        logger.warning("The partner's callback did not take the key: %s", error)
        return Delivery.FAILED
    _undelivered_keys.pop(claim.run_id, None)
    detail["callback_status"] = status
    _record(claim, "done", detail)
    logger.info("Partner notified (callback answered %s)", status)
    return Delivery.DONE


async def notify_partner_now(claim: Claim, channel: Channel) -> Delivery:
    """:func:`notify_partner` with quick retries spaced by ``ONBOARDING_RETRY_DELAY``."""
    delay = settings().retry_delay
    task = notify_partner.with_options(
        retry_delay_seconds=[delay * factor for factor in QUICK_RETRY_FACTORS]
    )
    return await task(claim, channel)


def _is_retry_left() -> bool:
    """True while this task run has quick retries left."""
    from prefect.context import TaskRunContext

    context = TaskRunContext.get()
    if context is None:
        return False
    return context.task_run.run_count <= context.task.retries
