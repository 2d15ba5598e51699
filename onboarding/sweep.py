"""One watcher sweep, without Prefect or SQL: what to read from the Partner API, and what to do.

Level-triggered reconciliation: webhooks make onboarding fast, the sweep makes it correct. Each
sweep reads the partner's channels in a few paginated, filtered list calls and compares them with
what the history tracks:

1. every ``setting_up`` channel (one list call per page);
2. every ``error`` channel (one list call per page);
3. tracked channels that left both lists (they became ``ready``, or something new): found in the
   ``ready`` list sorted newest-modified first, reading only as far back as the oldest time one
   of them was last seen ``setting_up``; the few still missing (an undocumented status) are read
   one by one, capped per sweep.

In steady state that is ``ceil(setting_up / page) + ceil(error / page) + 1`` requests, however
many channels there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from onboarding.hub import Channel, HubClient, NotFound

__all__ = [
    "ActiveRun",
    "SweepPlan",
    "SweepRead",
    "modified_at",
    "plan_sweep",
    "read_partner_channels",
]

MAX_SINGLE_READS = 50  # per sweep; the rest waits for the next sweep


@dataclass
class SweepRead:
    """The channels one sweep saw, by id, and what could not be found."""

    channels: dict[str, Channel] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def modified_at(channel: Channel) -> datetime | None:
    """The channel's ``modified_at`` as a datetime (None when missing or unreadable)."""
    if not channel.modified_at:
        return None
    try:
        return datetime.fromisoformat(channel.modified_at)
    except ValueError:
        return None


async def read_partner_channels(
    hub: HubClient, *, tracked: Mapping[str, datetime | None]
) -> SweepRead:
    """Read every ``setting_up`` and ``error`` channel, plus the ``tracked`` ones that left them.

    ``tracked`` maps a channel id to when it was last seen ``setting_up`` (None: unknown).
    """
    read = SweepRead()
    for status in ("setting_up", "error"):
        async for channel in hub.iter_channels(filters={"availability_status": status}):
            read.channels[channel.id] = channel
    missing = {cid: seen for cid, seen in tracked.items() if cid not in read.channels}
    if missing:
        await _find_in_ready_list(hub, missing, read)
    for channel_id in list(missing)[:MAX_SINGLE_READS]:
        try:
            read.channels[channel_id] = await hub.get_channel(channel_id)
        except NotFound:
            read.missing.append(channel_id)
        missing.pop(channel_id)
    read.missing.extend(missing)
    return read


async def _find_in_ready_list(
    hub: HubClient, missing: dict[str, datetime | None], read: SweepRead
) -> None:
    """Page the ``ready`` list newest-modified first until every missing channel is found."""
    known = [seen for seen in missing.values() if seen is not None]
    cutoff = min(known) if len(known) == len(missing) else None
    async for channel in hub.iter_channels(
        filters={"availability_status": "ready"}, sort="-modified_at"
    ):
        if channel.id in missing:
            read.channels[channel.id] = channel
            missing.pop(channel.id)
            if not missing:
                return
        modified = modified_at(channel)
        if cutoff is not None and modified is not None and modified < cutoff:
            return  # older than any change we are looking for


@dataclass(frozen=True)
class ActiveRun:
    """An onboarding the history considers active."""

    run_id: int
    channel_id: str
    flow_run_id: str | None
    deadline_at: datetime


@dataclass
class SweepPlan:
    """What the sweep should do about what it saw."""

    start: list[Channel] = field(default_factory=list)  # setting_up, nobody onboarding them
    wake: list[ActiveRun] = field(default_factory=list)  # their channel left setting_up
    overdue: list[ActiveRun] = field(default_factory=list)  # past their set-up deadline


def plan_sweep(
    *,
    channels: Iterable[Channel],
    active: Mapping[str, ActiveRun],
    onboarded: set[str],
    now: datetime,
) -> SweepPlan:
    """Decide which onboardings to start, which waiting runs to wake, which are overdue."""
    plan = SweepPlan()
    for channel in channels:
        run = active.get(channel.id)
        if run is None:
            if channel.availability_status == "setting_up" and channel.id not in onboarded:
                plan.start.append(channel)
        elif channel.availability_status != "setting_up" and run.flow_run_id:
            plan.wake.append(run)
    plan.overdue = [run for run in active.values() if run.deadline_at <= now]
    return plan
