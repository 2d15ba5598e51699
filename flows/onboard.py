"""``onboard-channel``: one flow run per channel, from signup to ready and a notified partner.

Reads like the procedure: claim the channel, look at it, wait while it is being set up, then finish
the follow-up steps, or raise an alert and fail. Every step lives in ``tasks/``; this module holds
no HTTP and no SQL.

Only two steps run as Prefect task runs: reading the channel and notifying the partner, the two
whose retries Prefect owns (transient Partner API and callback failures). The others are local,
idempotent history writes and an artifact; as task runs they cost three state round trips each
and bought nothing a retry could fix, so they are called as plain functions (``.fn``). A run's
name and tags are set once, when it is created (``tasks/intake.py``), never renamed at its start.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, NamedTuple

from prefect import flow
from prefect.states import Completed, Failed, State

from onboarding.alerts import AlertKind
from onboarding.hub import Channel
from onboarding.procedure import Verdict, poll_delay
from onboarding.store import RunState
from tasks.alerting import alert_on_flow_failure, raise_alert, resolve_channel_alerts
from tasks.channels import read_channel
from tasks.flow_runs import current_flow_run, label_direct_run, park_successor
from tasks.followup import notify_partner
from tasks.history import Claim, ClaimKind, claim_channel, finish_run, hand_over, record_status
from tasks.reporting import publish_timeline
from tasks.resources import partner_id, settings

__all__ = ["onboard_channel", "run_name"]


def run_name(channel_id: str, client_id: str | None) -> str:
    """``onboard-<client>-<channel>``, the name people search for in the UI."""
    return f"onboard-{client_id or 'unknown'}-{channel_id}"


@flow(
    name="onboard-channel",
    on_failure=[alert_on_flow_failure],
    on_crashed=[alert_on_flow_failure],
    persist_result=False,
)
async def onboard_channel(
    channel_id: str, client_id: str | None = None, trigger: str = "manual"
) -> State[Any]:
    """Onboard one channel: wait for ``ready``, notify the partner, or alert and fail."""
    if client_id is None:
        client_id = _client_of(await read_channel(channel_id))
    flow_run_id, from_deployment = current_flow_run()
    if not from_deployment:
        await label_direct_run(
            name=run_name(channel_id, client_id),
            tags=["onboarding", f"partner:{partner_id()}", f"client:{client_id or 'unknown'}"],
        )

    claim = await claim_channel.fn(
        channel_id=channel_id,
        client_id=client_id,
        trigger=trigger,
        flow_run_id=str(flow_run_id) if flow_run_id else None,
    )
    if claim.kind is ClaimKind.ALREADY_DONE:
        return Completed(
            message=f"channel {channel_id} was already onboarded (run #{claim.run_id})"
        )
    if claim.kind is ClaimKind.OWNED_ELSEWHERE:
        return Completed(
            message=f"channel {channel_id} is being onboarded by run #{claim.run_id} "
            f"(flow run {claim.owner_flow_run_id}); nothing to do"
        )

    channel = await read_channel(channel_id)
    verdict = await wait_while_setting_up(claim, channel, park=from_deployment)
    channel = verdict.channel
    match verdict.verdict:
        case Verdict.WAIT if from_deployment and not claim.past_deadline():
            return await hand_over_to_parked_run(claim, channel)
        case Verdict.READY:
            return await finish_onboarding(claim, channel)
        case Verdict.ERROR:
            reason = f"channel {channel_id} is in error: {_setup_error(channel)}"
            return await fail_onboarding(claim, channel, AlertKind.CHANNEL_ERROR, reason)
        case Verdict.UNKNOWN:
            reason = f"unknown availability_status {channel.availability_status!r}"
            return await fail_onboarding(claim, channel, AlertKind.UNKNOWN_STATUS, reason)
        case _:
            reason = f"still setting_up at the deadline ({claim.deadline_at:%Y-%m-%d %H:%M} UTC)"
            return await fail_onboarding(
                claim, channel, AlertKind.SETUP_DEADLINE_EXCEEDED, reason, RunState.TIMED_OUT
            )


class Observed(NamedTuple):
    """The last reading of the channel and what it means."""

    channel: Channel
    verdict: Verdict


async def wait_while_setting_up(claim: Claim, channel: Channel, *, park: bool) -> Observed:
    """Record each reading and wait while the channel is ``setting_up``, until the deadline.

    From a deployment the run does not wait here: it returns the ``WAIT`` verdict and the caller
    hands over to a parked run (no process or slot held); run directly it polls in-process with
    capped exponential backoff and jitter.
    """
    config = settings()
    attempt = 0
    while (verdict := await record_status.fn(claim, channel)) is Verdict.WAIT:
        now = datetime.now(UTC)
        if claim.past_deadline(now) or park:
            break
        delay = poll_delay(attempt, initial=config.poll_initial, maximum=config.poll_max)
        await asyncio.sleep(min(delay, (claim.deadline_at - now).total_seconds()))
        attempt += 1
        channel = await read_channel(claim.channel_id)
    return Observed(channel, verdict)


async def hand_over_to_parked_run(claim: Claim, channel: Channel) -> State[Any]:
    """The channel is still ``setting_up`` after a wake: a fresh parked run waits instead.

    Supported Prefect only: a new parked flow run of the same deployment (fresh idempotency key),
    recorded in the history as the onboarding's flow run; this run then ends ``Completed``.
    """
    successor = await park_successor(
        channel_id=claim.channel_id,
        until=claim.deadline_at,
        message=f"waiting for channel {claim.channel_id} (still {channel.status or 'setting_up'})",
        attempt=claim.attempts,
    )
    hand_over(claim, flow_run_id=str(successor.id))
    return Completed(
        message=f"channel {claim.channel_id} is still setting_up: handed over to the parked "
        f"flow run {successor.name} ({successor.id})"
    )


async def finish_onboarding(claim: Claim, channel: Channel) -> State[Any]:
    """The channel is ready: notify the partner, close the run, clear the channel's alerts."""
    await notify_partner(claim, channel)
    await finish_run.fn(claim, state=RunState.COMPLETED)
    await resolve_channel_alerts.fn(claim)
    await publish_timeline(claim, channel, outcome="completed")
    return Completed(message=f"channel {claim.channel_id} is ready; onboarding completed")


async def fail_onboarding(
    claim: Claim,
    channel: Channel,
    kind: AlertKind,
    reason: str,
    state: RunState = RunState.FAILED,
) -> State[Any]:
    """Alert, close the run with the reason, and end the flow run Failed."""
    await raise_alert(claim, channel, kind=kind, detail=reason)
    await finish_run.fn(claim, state=state, reason=reason)
    await publish_timeline(claim, channel, outcome=str(state), reason=reason)
    return Failed(message=reason)


def _client_of(channel: Channel) -> str:
    return channel.client_id or (channel.client.id if channel.client else None) or "unknown"


def _setup_error(channel: Channel) -> str:
    error = channel.setup_info.error if channel.setup_info else None
    return str(error) if error else f"status {channel.status!r}, no error detail from the API"
