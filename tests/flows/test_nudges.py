"""The executor hears about a woken run from Prefect's event stream, not only at its next poll."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from prefect import flow, get_client

from onboarding.orchestration.flow_runs import awaiting_state, wake_runs
from onboarding.orchestration.nudges import nudge_on_due_runs


@flow(name="stand-in-nudged-onboarding")
def _stand_in() -> None:
    """A flow whose runs stand for onboarding runs (never executed)."""


async def test_waking_a_parked_run_nudges_the_executor(prefect_api):
    """Waking a parked run nudges the executor within seconds (its poll may be minutes away)."""
    nudged = asyncio.Event()
    listener = asyncio.create_task(nudge_on_due_runs(nudged.set))
    try:
        async with get_client() as client:
            until = datetime.now(UTC) + timedelta(hours=1)
            run = await client.create_flow_run(_stand_in, state=awaiting_state(until, "wait"))
            canary = await client.create_flow_run(_stand_in, state=awaiting_state(until, "x"))
            await wake_runs([canary.id])
            async with asyncio.timeout(20):  # the stream connecting, then the canary's nudge
                await nudged.wait()
            nudged.clear()

            assert await wake_runs([run.id]) == [str(run.id)]
            async with asyncio.timeout(10):
                await nudged.wait()
    finally:
        listener.cancel()
