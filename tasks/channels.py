"""Tasks that read channels from the Partner API."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from onboarding.hub import Channel
from onboarding.hub.errors import is_retryable
from onboarding.runtime import hub_client, settings

__all__ = ["read_channel", "retry_if_transient"]


def retry_if_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry only what a retry can fix: 5xx, timeouts, 429 (never 401/403/404 or bad data)."""
    error = state.data
    return isinstance(error, BaseException) and is_retryable(error)


@task(
    name="read-channel",
    cache_policy=NO_CACHE,  # a poll must see the API's current answer, never a cached one
    retries=4,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient,
)
async def _read_channel(channel_id: str) -> Channel:
    """Read the channel's current state from the Partner API."""
    async with hub_client() as hub:
        return await hub.get_channel(channel_id)


async def read_channel(channel_id: str) -> Channel:
    """Read the channel, retrying transient failures (``ONBOARDING_RETRIES``, ``_RETRY_DELAY``)."""
    config = settings()
    reader = _read_channel.with_options(
        retries=config.retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=config.retry_delay),
    )
    return await reader(channel_id)
