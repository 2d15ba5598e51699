"""Scenarios: what a fresh sandbox holds besides the seeded partners.

``demo`` is something a person can watch: channels that become ready over the next minutes, one
that fails, one already ready, one whose client grants key permission only some time after the
channel is ready (a permission wait), and new signups arriving about every 30 seconds for a
while. Events follow 360dialog's order: ``channel_created`` -> ``channel_submitted`` ->
``channel_ready`` -> ``channel_running`` and ``channel_live`` (and
``channel_permission_granted``) at their own moments. Two minutes in, the demo announces a
three-minute outage of the partner's callback through the ``on_demo_event`` hook (whoever serves
the demo callback makes it fail meanwhile).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from onboarding.sandbox.lifecycle import schedule_grant, schedule_settle
from onboarding.sandbox.state import SandboxState

__all__ = ["CALLBACK_OUTAGE", "PERMISSION_CLIENT", "SCENARIOS", "DemoHook", "seed_scenario"]

SCENARIOS = ("none", "demo")

DemoHook = Callable[[str], None]
"""Called with ``"callback_outage_start"`` / ``"callback_outage_end"`` during the demo."""

CALLBACK_OUTAGE = (120.0, 180.0)  # (seconds after start, duration) the demo callback is down
PERMISSION_CLIENT = ("Kite Kitchen", 30.0, 75.0)  # (name, ready after, permission granted after)
_RUNNING_AFTER = 5.0  # seconds from channel_ready to channel_running in the demo
_LIVE_AFTER = 20.0  # ... and to channel_live

# (client name, settle after seconds or None if already ready, settles to)
_DEMO_CLIENTS = [
    ("Acme Bakery", 20.0, "ready"),
    ("Blue Bikes", 45.0, "ready"),
    ("Corner Cafe", 90.0, "ready"),
    ("Delta Dental", 60.0, "error"),
    ("Evergreen Florist", None, "ready"),
]
_SIGNUP_NAMES = ["Fjord Fitness", "Golden Grill", "Harbor Hotel", "Iris Optics", "Juniper Yoga"]


def seed_scenario(
    state: SandboxState,
    scenario: str | None,
    *,
    on_demo_event: DemoHook | None = None,
    without_status: int = 0,
) -> None:
    """Fill ``state`` for ``scenario`` (``None``/``"none"``: nothing); runs on the server loop.

    ``without_status`` adds that many channels whose objects lack ``availability_status``
    (as one public sample does), whatever the scenario.
    """
    for index in range(without_status):
        client = state.create_client(name=f"No Status {index + 1}")
        state.create_channel(client=client, availability_status=None)
    if scenario in (None, "none"):
        return
    if scenario != "demo":
        raise ValueError(f"unknown sandbox scenario {scenario!r} (choose from {SCENARIOS})")
    _demo(state, on_demo_event=on_demo_event)


def _demo(
    state: SandboxState, *, signup_interval: float = 30.0, on_demo_event: DemoHook | None = None
) -> None:
    state.running_after, state.live_after = _RUNNING_AFTER, _LIVE_AFTER
    for name, after, to in _DEMO_CLIENTS:
        client = state.create_client(name=name)
        channel = state.create_channel(
            client=client, availability_status="setting_up" if after else "ready"
        )
        if after is not None:
            schedule_settle(state, channel["id"], after=after, to=to)
    name, ready_after, granted_after = PERMISSION_CLIENT
    channel = state.create_channel(client=state.create_client(name=name), needs_permission=403)
    schedule_settle(state, channel["id"], after=ready_after)
    schedule_grant(state, channel["id"], after=granted_after)
    if on_demo_event is not None:
        start, duration = CALLBACK_OUTAGE
        hook = on_demo_event
        state.call_later(start, lambda: hook("callback_outage_start"))
        state.call_later(start + duration, lambda: hook("callback_outage_end"))
    state.start_task(_signups(state, signup_interval), name="sandbox-demo-signups")


async def _signups(state: SandboxState, interval: float) -> None:
    """New clients sign up every ~``interval`` seconds; most channels end ready, some error."""
    for name in _SIGNUP_NAMES:
        await asyncio.sleep(interval * random.uniform(0.8, 1.2))
        client = state.create_client(name=name)
        channel = state.create_channel(client=client)
        to = "error" if random.random() < 0.2 else "ready"
        schedule_settle(state, channel["id"], after=random.uniform(20.0, 90.0), to=to)
