"""``onboard-channel``: one onboarding, from signup to a partner holding the channel's key.

Reads like the procedure: claim the channel, read it, and do what the lifecycle says: deliver the
key once it is ready, wait again (for the channel, the client's permission or the partner's
callback) without holding a process, or raise an alert and fail. Cancelled in Prefect (the UI's
Cancel), it stops where it is and ends ``Cancelled``. The two task runs are the Partner
API read and the partner notification, whose retries Prefect owns; the bookkeeping between them is
plain calls into the core. This module holds no HTTP and no SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from uuid import UUID

from prefect import flow, tags
from prefect.settings import get_current_settings
from prefect.states import Cancelled, Completed, Failed, State

from onboarding.alerts import AlertKind
from onboarding.history import (
    Claim,
    ClaimKind,
    OnboardingEnded,
    claim_channel,
    delivery_step,
    next_step,
    note_waiting,
    wake_requests,
)
from onboarding.hub import Channel, NotFound
from onboarding.lifecycle import Action, Decision, poll_delay
from onboarding.orchestration.cancel import CANCELLED, unless_cancelled
from onboarding.orchestration.flow_runs import current_flow_run, owner_state, run_name, run_tags
from onboarding.orchestration.outcomes import settle_onboarding
from onboarding.orchestration.reconciler import hand_over
from onboarding.runtime import partner_id, settings
from onboarding.store import RunState
from tasks.alerting import alert_on_flow_failure, raise_alert, resolve_channel_alerts
from tasks.channels import read_channel
from tasks.followup import Delivery, notify_partner_now
from tasks.missing import look_again_at, missing_channel
from tasks.report import publish_timeline

__all__ = ["onboard_channel", "onboard_in_process"]


@flow(
    name="onboard-channel",
    on_failure=[alert_on_flow_failure],
    on_crashed=[alert_on_flow_failure],
    persist_result=False,
    # Nothing is persisted, but Prefect's engine resolves a result store for every run; naming
    # one spares each run its blocking request for the server's default storage.
    result_storage=get_current_settings().results.local_storage_path,
)
async def onboard_channel(
    channel_id: str, client_id: str | None = None, trigger: str = "manual"
) -> State[Any]:
    """Onboard one channel: deliver its key once it is ready, or alert and fail."""
    flow_run_id, from_deployment = current_flow_run()
    outcome = await unless_cancelled(
        flow_run_id,
        onboard(channel_id, client_id, trigger, flow_run_id, from_deployment=from_deployment),
    )
    if outcome is CANCELLED:
        return cancel_onboarding(channel_id, str(flow_run_id))
    return outcome


async def onboard(
    channel_id: str,
    client_id: str | None,
    trigger: str,
    flow_run_id: UUID | None,
    *,
    from_deployment: bool,
) -> State[Any]:
    """The procedure: claim, read, and finish, wait again or fail, as the lifecycle says."""
    channel = None
    if not client_id:
        with contextlib.suppress(NotFound):  # claimed for an unknown client; the loop fails it
            channel = await read_channel(channel_id)
    claim = await claim_channel(
        channel_id=channel_id,
        client_id=client_id or _client_of(channel),
        trigger=trigger,
        flow_run_id=str(flow_run_id) if flow_run_id else None,
        owner_state=owner_state,
    )
    if claim.kind is not ClaimKind.OWN:
        return Completed(message=claim.describe)

    attempt = 0
    while True:
        wakes_seen = wake_requests(claim)
        try:
            channel, step = await read_and_decide(claim, channel)
            match step.action:
                case Action.FINISH:
                    return await complete_onboarding(claim, channel)
                case Action.FAIL | Action.TIME_OUT:
                    return await fail_onboarding(claim, channel, step)
            retry_at = note_waiting(claim, step) or look_again_at(claim, step)
        except OnboardingEnded as ended:  # cancelled, say, while this run read its channel
            return Completed(message=f"{ended}; nothing left to do")
        if from_deployment:
            return await hand_over(
                claim,
                until=retry_at or claim.deadline_at,
                reason=step.reason,
                wakes_seen=wakes_seen,
            )
        config = settings()
        await asyncio.sleep(
            poll_delay(attempt, initial=config.poll_initial, maximum=config.poll_max)
        )
        attempt += 1


async def read_and_decide(
    claim: Claim, last_read: Channel | None
) -> tuple[Channel | None, Decision]:
    """Read the channel and take the lifecycle's next step: deliver its key once it is ready.

    A channel the Partner API does not find is looked for again within a grace, then failed;
    ``last_read`` is what the run knew of it before. Raises :class:`OnboardingEnded` when the
    onboarding has ended meanwhile.
    """
    try:
        channel = await read_channel(claim.channel_id)
    except NotFound:
        return last_read, missing_channel(claim, reading=True)
    step = next_step(claim, channel)
    if step.action is Action.FINISH:
        step = await deliver_key(claim, channel)
    return channel, step


async def onboard_in_process(channel_id: str, client_id: str | None) -> State[Any]:
    """Run one onboarding in this process (``onboarding onboard``), named and tagged at creation.

    Runs from the deployment get their name and tags when the adapter creates them.
    """
    named = onboard_channel.with_options(flow_run_name=run_name(channel_id, client_id))
    with tags(*run_tags(partner_id=partner_id(), client_id=client_id)):
        return await named(channel_id=channel_id, client_id=client_id, return_state=True)


async def deliver_key(claim: Claim, channel: Channel) -> Decision:
    """Create and deliver the key; what the lifecycle says when that could not be done."""
    try:
        delivery = await notify_partner_now(claim, channel)
    except NotFound:  # the Partner API has no such channel (any more): fail, never crash
        return missing_channel(claim, reading=False)
    if delivery is Delivery.DONE:
        return Decision(Action.FINISH, "the partner holds the channel's key")
    return delivery_step(claim, refused=delivery is Delivery.REFUSED)


async def complete_onboarding(claim: Claim, channel: Channel) -> State[Any]:
    """The partner holds the key: close the run, clear the channel's alerts, leave a timeline."""
    settle_onboarding(run_id=claim.run_id, state=RunState.COMPLETED)
    await resolve_channel_alerts(claim)
    await publish_timeline(claim, channel, outcome="completed")
    return Completed(message=f"channel {claim.channel_id} is ready; onboarding completed")


async def fail_onboarding(claim: Claim, channel: Channel | None, step: Decision) -> State[Any]:
    """Alert, close the run with the reason, and end the flow run Failed."""
    reason = step.reason
    if step.alert == AlertKind.CHANNEL_ERROR and channel is not None:
        reason = f"channel {claim.channel_id} is in error: {_setup_error(channel)}"
    state = RunState.TIMED_OUT if step.action is Action.TIME_OUT else RunState.FAILED
    await raise_alert(claim, channel, kind=AlertKind(step.alert), detail=reason)
    settle_onboarding(run_id=claim.run_id, state=state, reason=reason)
    await publish_timeline(claim, channel, outcome=state, reason=reason)
    return Failed(message=reason)


def cancel_onboarding(channel_id: str, flow_run_id: str) -> State[Any]:
    """Cancelled in Prefect: the onboarding ends ``cancelled`` (no alert, no follow-up)."""
    reason = "cancelled in Prefect; `onboarding onboard` starts it again"
    settle_onboarding(
        channel_id=channel_id, flow_run_id=flow_run_id, state=RunState.CANCELLED, reason=reason
    )
    return Cancelled(message=f"channel {channel_id}: {reason}")


def _client_of(channel: Channel | None) -> str:
    if channel is None:
        return "unknown"
    return channel.client_id or (channel.client.id if channel.client else None) or "unknown"


def _setup_error(channel: Channel) -> str:
    error = channel.setup_info.error if channel.setup_info else None
    return str(error) if error else f"status {channel.status!r}, no error detail from the API"
