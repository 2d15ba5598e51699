"""What one watcher sweep reads from the Partner API, in a few paginated, filtered list calls.

Level-triggered reconciliation: webhooks make onboarding fast, the sweep makes it correct. Each
sweep reads:

1. every ``setting_up`` channel (one list call per page);
2. every ``error`` channel (one list call per page);
3. the ``ready`` list sorted newest-modified first, as far back as the last sweep (all of it on an
   installation's first sweep, which adopts what is already ready) or the oldest time a tracked
   channel was last seen ``setting_up``, whichever is earlier;
4. tracked channels still not found (an undocumented status, or no status at all) one by one,
   capped per sweep.

In steady state that is ``ceil(setting_up / page) + ceil(error / page) + 1`` requests, however
many channels there are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from onboarding.hub import Channel, HubClient, NotFound

__all__ = ["SweepRead", "created_at", "modified_at", "read_partner_channels"]

MAX_SINGLE_READS = 50  # per sweep; the rest waits for the next sweep


@dataclass
class SweepRead:
    """The channels one sweep saw, by id, and what could not be found."""

    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    channels: dict[str, Channel] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def modified_at(channel: Channel) -> datetime | None:
    """The channel's ``modified_at`` as an aware datetime (None when missing or unreadable)."""
    return _moment(channel.modified_at)


def created_at(channel: Channel) -> datetime | None:
    """The channel's ``created_at`` as an aware datetime (None when missing or unreadable)."""
    return _moment(channel.created_at)


async def read_partner_channels(
    hub: HubClient,
    *,
    tracked: Mapping[str, datetime | None],
    ready_since: datetime | None = None,
) -> SweepRead:
    """Read every ``setting_up`` and ``error`` channel, the recently ready ones, and ``tracked``.

    ``tracked`` maps a channel id to when it was last seen ``setting_up`` (None: unknown);
    ``ready_since`` is the last sweep (None: read the whole ``ready`` list).
    """
    read = SweepRead()
    for status in ("setting_up", "error"):
        async for channel in hub.iter_channels(filters={"availability_status": status}):
            read.channels[channel.id] = channel
    missing = {cid: seen for cid, seen in tracked.items() if cid not in read.channels}
    await _read_ready_list(hub, missing, read, ready_since)
    for channel_id in list(missing)[:MAX_SINGLE_READS]:
        try:
            read.channels[channel_id] = await hub.get_channel(channel_id)
        except NotFound:
            read.missing.append(channel_id)
        missing.pop(channel_id)
    read.missing.extend(missing)
    return read


async def _read_ready_list(
    hub: HubClient,
    missing: dict[str, datetime | None],
    read: SweepRead,
    ready_since: datetime | None,
) -> None:
    """Page the ``ready`` list newest-modified first, back to the oldest change we look for."""
    known = [seen for seen in missing.values() if seen is not None]
    if ready_since is None or len(known) < len(missing):
        cutoff = None  # read it all
    else:
        # Whole seconds: the API's timestamps have no fraction, so a change in the same second
        # as the cut-off must still count as newer.
        cutoff = min([ready_since, *known]).replace(microsecond=0)
    async for channel in hub.iter_channels(
        filters={"availability_status": "ready"}, sort="-modified_at"
    ):
        modified = modified_at(channel)
        if cutoff is not None and modified is not None and modified < cutoff:
            return  # older than any change we are looking for
        read.channels[channel.id] = channel
        missing.pop(channel.id, None)
