"""Scenarios: what a fresh sandbox holds besides the seeded partners.

``demo`` is something a person can watch: channels that become ready over the next minutes, one
that fails, one already ready, and new signups arriving about every 30 seconds for a while.
"""

from __future__ import annotations

import asyncio
import random

from onboarding.sandbox.lifecycle import schedule_settle
from onboarding.sandbox.state import SandboxState

__all__ = ["SCENARIOS", "seed_scenario"]

SCENARIOS = ("none", "demo")

# (client name, settle after seconds or None if already ready, settles to)
_DEMO_CLIENTS = [
    ("Acme Bakery", 20.0, "ready"),
    ("Blue Bikes", 45.0, "ready"),
    ("Corner Cafe", 90.0, "ready"),
    ("Delta Dental", 60.0, "error"),
    ("Evergreen Florist", None, "ready"),
]
_SIGNUP_NAMES = ["Fjord Fitness", "Golden Grill", "Harbor Hotel", "Iris Optics", "Juniper Yoga"]


def seed_scenario(state: SandboxState, scenario: str | None) -> None:
    """Fill ``state`` for ``scenario`` (``None``/``"none"``: nothing); runs on the server loop."""
    if scenario in (None, "none"):
        return
    if scenario != "demo":
        raise ValueError(f"unknown sandbox scenario {scenario!r} (choose from {SCENARIOS})")
    _demo(state)


def _demo(state: SandboxState, *, signup_interval: float = 30.0) -> None:
    for name, after, to in _DEMO_CLIENTS:
        client = state.create_client(name=name)
        channel = state.create_channel(
            client=client, availability_status="setting_up" if after else "ready"
        )
        if after is not None:
            schedule_settle(state, channel["id"], after=after, to=to)
    state.start_task(_signups(state, signup_interval), name="sandbox-demo-signups")


async def _signups(state: SandboxState, interval: float) -> None:
    """New clients sign up every ~``interval`` seconds; most channels end ready, some error."""
    for name in _SIGNUP_NAMES:
        await asyncio.sleep(interval * random.uniform(0.8, 1.2))
        client = state.create_client(name=name)
        channel = state.create_channel(client=client)
        to = "error" if random.random() < 0.2 else "ready"
        schedule_settle(state, channel["id"], after=random.uniform(20.0, 90.0), to=to)
