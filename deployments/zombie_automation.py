"""Prefect's documented zombie-flow automation, sized for the executor.

``python -m deployments.zombie_automation [--within SECONDS]`` creates it on the Prefect server in
``PREFECT_API_URL`` (once: an automation of the same name is left as it is). Executors then need
``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` (30, Prefect's minimum) so the flow runs they execute emit
``prefect.flow-run.heartbeat``; a run whose heartbeats stop (its executor was killed) is marked
``Crashed`` after ``within`` seconds, and the watcher makes it due again once the onboarding's
history has not moved for ``ONBOARDING_OWNER_LEASE`` seconds. Keep the lease above ``within``.

Parked onboardings are never touched: a parked run is a flow run that has not executed yet, so
it has sent no heartbeat, and the run that parked it ended ``Completed``, an event the
automation expects.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta

from prefect import get_client
from prefect.automations import Automation
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

__all__ = ["NAME", "ensure_zombie_automation", "zombie_automation"]

NAME = "Crash zombie flows"


def zombie_automation(within: float = 90.0) -> Automation:
    """The automation from Prefect's "detect zombie flows" guide, ``within`` seconds of silence."""
    return Automation(
        name=NAME,
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"Flow run marked as crashed: no heartbeat for {within:g} s.",
            )
        ],
    )


async def ensure_zombie_automation(within: float = 90.0) -> bool:
    """Create the automation unless one of its name exists; True when it was created."""
    async with get_client() as client:
        if await client.read_automations_by_name(NAME):
            return False
    await zombie_automation(within).acreate()
    return True


def main() -> None:
    """Command line: create the automation on the configured Prefect server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--within", type=float, default=90.0, help="seconds of silence (90)")
    created = asyncio.run(ensure_zombie_automation(parser.parse_args().within))
    print(f"automation {NAME!r} {'created' if created else 'already there'}")


if __name__ == "__main__":
    main()
