"""Nudge the executor the moment a run becomes due, instead of at its next poll.

A webhook wakes a parked run in a few milliseconds; an executor polling every second would find
it half a second later on average. Prefect emits an event for every state a flow run enters
(``prefect.flow-run.<state name>``), and its events stream is public (``get_events_subscriber``),
so the executor listens for the states that make a run claimable and polls at once. Polling
stays: the stream only shortens the wait, and when it is unavailable (a proxy without websockets,
a restart of the API) nothing but latency is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter

from onboarding.orchestration.executor import HANDED_BACK, WOKEN

__all__ = ["DUE_EVENTS", "nudge_on_due_runs"]

logger = logging.getLogger("onboarding.executor")

DUE_EVENTS = [f"prefect.flow-run.{name}" for name in (WOKEN, "Scheduled", HANDED_BACK, "Revived")]
"""A run entered a state an executor claims: woken, due now, handed back or revived."""

RETRY_AFTER = 30.0  # seconds before listening again after the stream failed


async def nudge_on_due_runs(nudge: Callable[[], None]) -> None:
    """Call ``nudge`` for every event of :data:`DUE_EVENTS`, until cancelled."""
    events = EventFilter(event=EventNameFilter(name=DUE_EVENTS))
    while True:
        try:
            async with get_events_subscriber(
                filter=events, reconnect_on_clean_close=True
            ) as subscriber:
                async for _ in subscriber:
                    nudge()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # polling carries on without it
            logger.info(
                "Prefect's event stream is unavailable (%s); polling only, listening again in "
                "%.0f s",
                error,
                RETRY_AFTER,
            )
        await asyncio.sleep(RETRY_AFTER)
