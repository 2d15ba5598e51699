"""Scripted channel lifecycles: settle to ``ready`` or ``error`` after a delay, on the loop."""

from __future__ import annotations

from onboarding.sandbox.state import SandboxState

__all__ = ["schedule_grant", "schedule_settle", "schedule_status"]

# Fractions of the settle delay at which the intermediate `status` values appear.
_WALK = ((1 / 3, "unverified"), (2 / 3, "verified"))


def schedule_status(
    state: SandboxState, channel_id: str, *, after: float, **changes: str | bool | None
) -> None:
    """``state.update_channel(channel_id, **changes)`` ``after`` seconds from now.

    Skipped if the channel has gone by then.
    """

    def apply() -> None:
        if channel_id in state.channels:
            state.update_channel(channel_id, **changes)  # type: ignore[arg-type]

    state.call_later(after, apply)


def schedule_settle(
    state: SandboxState,
    channel_id: str,
    *,
    after: float,
    to: str = "ready",
    error: str | None = None,
) -> None:
    """Walk a channel through ``unverified``/``verified``; end it ``to`` after ``after`` s."""

    def walk(status: str) -> None:
        channel = state.channels.get(channel_id)
        if channel is not None and channel.get("availability_status") == "setting_up":
            state.update_channel(channel_id, status=status)

    for fraction, status in _WALK:
        state.call_later(after * fraction, lambda status=status: walk(status))
    if to == "error":
        error = error or "Display name rejected by Meta"
    schedule_status(state, channel_id, after=after, availability_status=to, error=error)


def schedule_grant(state: SandboxState, channel_id: str, *, after: float) -> None:
    """The client grants the partner permission ``after`` seconds from now."""

    def grant() -> None:
        if channel_id in state.channels:
            state.grant_permission(channel_id)

    state.call_later(after, grant)
