"""The follow-up step between the key and the callback: set the number's own webhook.

With ``ONBOARDING_CHANNEL_WEBHOOK_URL`` set, the delivery (:mod:`tasks.followup`) calls
:func:`set_number_webhook` with the key it just created, before the partner's callback. The step
is recorded in ``onboarding_step`` as ``channel_webhook``: ``done`` (with the attempt it was done
for), ``failed`` (with the error), or ``skipped`` when no URL is configured. Transient failures
are retried by Prefect; when the retries run out the delivery is recorded as failed and takes the
undelivered path (wait, retry with a fresh key, alert at the end of the retry window).

The key is a task argument held in memory only: it is never logged, recorded or raised.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from onboarding.channel_webhook import (
    ChannelWebhookError,
    fill_template,
    parse_headers,
    set_channel_webhook,
)
from onboarding.history import Claim
from onboarding.hub import Channel, ChannelApiKey
from onboarding.redact import mask_url
from onboarding.runtime import history_engine, settings
from onboarding.store import get_step, record_step, session_scope
from onboarding.tls import tls_context

__all__ = ["CHANNEL_WEBHOOK", "ChannelWebhook", "set_number_webhook", "set_number_webhook_now"]

CHANNEL_WEBHOOK = "channel_webhook"
QUICK_RETRY_FACTORS = [1, 5, 15]  # in ONBOARDING_RETRY_DELAY units, like the callback's


class ChannelWebhook(StrEnum):
    """What the callback body says about the number's webhook (``channel_webhook``)."""

    SET = "set"
    NOT_CONFIGURED = "not_configured"


def _retry_if_retryable(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry no answer, 408, 429 and 5xx; never a refusal that a retry cannot fix."""
    error = state.data
    return isinstance(error, ChannelWebhookError) and error.retryable


def _record(claim: Claim, outcome: str, detail: dict[str, Any]) -> None:
    with session_scope(history_engine()) as session:
        record_step(
            session, run_id=claim.run_id, step=CHANNEL_WEBHOOK, outcome=outcome, detail=detail
        )


def _done_for(claim: Claim, attempt: int) -> bool:
    """True when the webhook was already set with this attempt's key (a quick callback retry)."""
    with session_scope(history_engine()) as session:
        record = get_step(session, run_id=claim.run_id, step=CHANNEL_WEBHOOK)
    return (
        record is not None
        and record.outcome == "done"
        and (record.detail or {}).get("attempt") == attempt
    )


@task(
    name="set-channel-webhook",
    cache_policy=NO_CACHE,
    retries=len(QUICK_RETRY_FACTORS),
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_if_retryable,
)
async def set_number_webhook(
    claim: Claim, channel: Channel, key: ChannelApiKey, attempt: int
) -> ChannelWebhook:
    """Set the number's webhook with its new ``key``; ``not_configured`` when no URL is set.

    Raises :class:`~onboarding.channel_webhook.ChannelWebhookError` (recorded ``failed``) when
    the Messaging API did not take it.
    """
    config = settings()
    if not config.channel_webhook_url:
        return ChannelWebhook.NOT_CONFIGURED
    if _done_for(claim, attempt):
        return ChannelWebhook.SET
    url = fill_template(
        config.channel_webhook_url, channel_id=channel.id, client_id=channel.client_id
    )
    detail: dict[str, Any] = {"attempt": attempt, "url": mask_url(url)}
    try:
        async with httpx.AsyncClient(timeout=config.callback_timeout, verify=tls_context()) as http:
            status = await set_channel_webhook(
                http,
                address=key.address,
                api_key=key.api_key,
                url=url,
                headers=parse_headers(config.channel_webhook_headers),
            )
    except ChannelWebhookError as error:
        _record(claim, "failed", {**detail, "error": str(error)})
        get_run_logger().warning("The number's webhook was not set: %s", error)
        raise
    _record(claim, "done", {**detail, "status": status})
    get_run_logger().info("The number's webhook is set (Messaging API answered %s)", status)
    return ChannelWebhook.SET


async def set_number_webhook_now(
    claim: Claim, channel: Channel, key: ChannelApiKey, attempt: int
) -> ChannelWebhook:
    """:func:`set_number_webhook` with retries spaced by ``ONBOARDING_RETRY_DELAY``; no task run
    at all (nothing for Prefect to record) when no URL is configured."""
    if not settings().channel_webhook_url:
        return ChannelWebhook.NOT_CONFIGURED
    delay = settings().retry_delay
    runner = set_number_webhook.with_options(
        retry_delay_seconds=[delay * factor for factor in QUICK_RETRY_FACTORS]
    )
    return await runner(claim, channel, key, attempt)
