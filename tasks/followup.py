"""The follow-up steps once a channel is ready: each idempotent, each recorded in the history.

A step recorded as done for the history run is skipped on any re-run of that onboarding (a woken,
resumed or taken-over flow run), so a partner never receives two API keys for one onboarding.

The one window no record can close is a process killed between creating the key and recording
the delivery (the key is a secret: it is never stored, so it cannot be re-sent). The step is
recorded as ``started`` before the key is created; a re-run that finds it ``started`` knows an
attempt was interrupted, says so in the log, and delivers a new key with ``attempt`` counting up.
Creating a key revokes the channel's earlier ones (as the 360dialog Hub documents), so the key the
partner last received is the one that works.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from onboarding.callback import CallbackError, deliver_completion
from onboarding.hub import Channel, ChannelApiKey
from onboarding.store import get_step, record_step, session_scope, step_done
from tasks.channels import retry_if_transient
from tasks.history import Claim
from tasks.resources import history_engine, hub_client, settings

__all__ = ["NOTIFY_PARTNER", "notify_partner"]

NOTIFY_PARTNER = "notify_partner"
CALLBACK_TIMEOUT = 15.0  # seconds the partner's callback may take to answer

# A key created but not yet delivered, kept in memory only, so a retried callback re-sends the
# same key instead of minting another one.
_undelivered_keys: dict[int, tuple[ChannelApiKey, int]] = {}  # run id -> (key, attempt)


def _retry_callback(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a callback that got no answer or a 5xx/429; and Partner API calls that may recover."""
    error = state.data
    if isinstance(error, CallbackError):
        return error.retryable
    return retry_if_transient(task, task_run, state)


def _already_done(claim: Claim, step: str) -> bool:
    with session_scope(history_engine()) as session:
        return step_done(session, run_id=claim.run_id, step=step) is not None


def _attempts_begun(claim: Claim, step: str) -> int:
    """How many attempts at ``step`` were recorded as started (0 if none)."""
    with session_scope(history_engine()) as session:
        record = get_step(session, run_id=claim.run_id, step=step)
    if record is None or record.outcome != "started":
        return 0
    return int((record.detail or {}).get("attempt", 1))


def _record(claim: Claim, step: str, outcome: str, detail: dict[str, Any]) -> None:
    with session_scope(history_engine()) as session:
        record_step(session, run_id=claim.run_id, step=step, outcome=outcome, detail=detail)


@task(
    name="notify-partner",
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_callback,
)
async def notify_partner(claim: Claim, channel: Channel) -> str:
    """Create the channel's Messaging API key and POST it, signed, to the partner's callback.

    The key exists only in memory between the two calls: it is never logged or stored.
    """
    logger = get_run_logger()
    if _already_done(claim, NOTIFY_PARTNER):
        logger.info("Partner already notified for this onboarding; skipping")
        return "already done"
    config = settings()
    if not config.callback_url:
        _record(claim, NOTIFY_PARTNER, "skipped", {"reason": "ONBOARDING_CALLBACK_URL not set"})
        return "skipped (no ONBOARDING_CALLBACK_URL)"
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
        undelivered = _undelivered_keys.get(claim.run_id)
        if undelivered is None:
            attempt = _attempts_begun(claim, NOTIFY_PARTNER) + 1
            if attempt > 1:
                logger.warning(
                    "An earlier attempt to notify the partner was interrupted after it began; "
                    "delivering a new API key (it revokes any key that attempt created)"
                )
            _record(claim, NOTIFY_PARTNER, "started", {"attempt": attempt})
            async with hub_client() as hub:
                undelivered = (await hub.create_channel_api_key(channel.id), attempt)
            _undelivered_keys[claim.run_id] = undelivered
        key, attempt = undelivered
        payload["api_key"] = key.api_key.get_secret_value()
        payload["api_key_id"] = key.id
        payload["attempt"] = attempt
        detail.update(api_key_id=key.id, attempt=attempt)
    async with httpx.AsyncClient(timeout=CALLBACK_TIMEOUT) as http:
        status = await deliver_completion(
            http, url=config.callback_url, secret=config.callback_secret, payload=payload
        )
    _undelivered_keys.pop(claim.run_id, None)
    detail["callback_status"] = status
    _record(claim, NOTIFY_PARTNER, "done", detail)
    logger.info("Partner notified (callback answered %s)", status)
    return "done"
