"""Starting and waking onboardings from outside a flow: partner webhooks and the watcher.

An onboarding is started by recording its history run first and then creating its Prefect flow
run *parked* (see ``tasks/flow_runs.py``), with an idempotency key made of the channel and the
history run: redelivered webhooks, a webhook racing the watcher, or a retried replay all land
on the same flow run. Why not a Prefect event and a deployment trigger: a trigger cannot create a
run in a waiting state, and ``emit_event`` is fire-and-forget, so the inbox could not know whether
Prefect really got the event; creating the run directly answers both.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from prefect import get_client
from prefect.exceptions import ObjectNotFound

from onboarding.receiver.events import HandoffEvent
from onboarding.store import (
    ObservationSource,
    RunState,
    get_active_run,
    record_observation,
    session_scope,
    update_run,
)
from tasks.flow_runs import create_waiting_run, wake_runs
from tasks.history import open_history_run
from tasks.resources import history_engine, partner_id

__all__ = [
    "DEPLOYMENT_NAME",
    "NoDeployment",
    "Started",
    "dispatch_event",
    "onboarding_deployment_id",
    "start_onboarding",
    "wake_onboarding",
]

DEPLOYMENT_NAME = "onboard-channel/onboard-channel"

_deployment_ids: dict[str, UUID] = {}


class NoDeployment(Exception):
    """The ``onboard-channel`` deployment is not registered with the Prefect API in use."""


@dataclass(frozen=True)
class Started:
    """What :func:`start_onboarding` did for a channel."""

    channel_id: str
    run_id: int | None
    flow_run_id: str | None
    created: bool  # a new flow run was created (False: one existed, or already onboarded)
    note: str


async def onboarding_deployment_id() -> UUID:
    """The id of the ``onboard-channel`` deployment (looked up once per API URL)."""
    from prefect.settings import PREFECT_API_URL

    api = str(PREFECT_API_URL.value())
    if api not in _deployment_ids:
        async with get_client() as client:
            try:
                deployment = await client.read_deployment_by_name(DEPLOYMENT_NAME)
            except ObjectNotFound:
                raise NoDeployment(
                    f"deployment {DEPLOYMENT_NAME!r} is not registered at {api}: "
                    "run `onboarding up` or `python -m deployments.serve`"
                ) from None
        _deployment_ids[api] = deployment.id
    return _deployment_ids[api]


async def start_onboarding(
    *, channel_id: str, client_id: str | None, trigger: str, wake_now: bool = False
) -> Started:
    """Make sure the channel has an onboarding: a history run and a (parked) flow run."""
    from flows.onboard import run_name

    client = client_id or "unknown"
    with session_scope(history_engine()) as session:
        run, _ = open_history_run(session, channel_id=channel_id, client_id=client, trigger=trigger)
    if run.state == RunState.COMPLETED or run.id is None:
        return Started(channel_id, run.id, run.flow_run_id, False, "already onboarded")
    if run.flow_run_id is not None:
        if wake_now:
            await wake_runs([run.flow_run_id])
        return Started(channel_id, run.id, run.flow_run_id, False, "onboarding already running")
    deployment_id = await onboarding_deployment_id()
    flow_run = await create_waiting_run(
        deployment_id=deployment_id,
        parameters={"channel_id": channel_id, "client_id": client, "trigger": trigger},
        name=run_name(channel_id, client),
        tags=["onboarding", f"partner:{partner_id()}", f"client:{client}"],
        until=run.deadline_at,
        idempotency_key=f"onboard-{channel_id}-run{run.id}",
        wake_now=wake_now,
    )
    with session_scope(history_engine()) as session:
        update_run(
            session,
            run_id=run.id,
            flow_run_id=str(flow_run.id),
            state=RunState.PENDING if wake_now else RunState.WAITING,
            stage="queued" if wake_now else "waiting for the channel",
        )
    return Started(channel_id, run.id, str(flow_run.id), True, "onboarding started")


async def wake_onboarding(channel_id: str) -> str | None:
    """Wake the channel's parked onboarding run; returns its flow run id if one was woken."""
    with session_scope(history_engine()) as session:
        run = get_active_run(session, channel_id=channel_id)
        flow_run_id = run.flow_run_id if run else None
    if flow_run_id is None:
        return None
    woken = await wake_runs([flow_run_id])
    return woken[0] if woken else None


START_EVENTS = frozenset({"channel_created", "channel_submitted"})
SETTLED_EVENTS = frozenset({"channel_ready", "channel_running", "channel_live"})


async def dispatch_event(event: HandoffEvent) -> str:
    """Hand a partner webhook to Prefect: start the channel's onboarding, or wake it.

    Returns the inbox outcome: ``"handled"`` or ``"ignored"``. Raises when Prefect cannot be
    reached, so the inbox keeps the event for the watcher to replay.
    """
    if event.channel_id is None or not event.event_type.startswith("channel_"):
        return "ignored"
    note_webhook_status(event)
    if event.event_type in START_EVENTS:
        await start_onboarding(
            channel_id=event.channel_id, client_id=event.client_id, trigger="webhook"
        )
        return "handled"
    if event.event_type in SETTLED_EVENTS:
        if await wake_onboarding(event.channel_id) is None:
            await start_onboarding(
                channel_id=event.channel_id,
                client_id=event.client_id,
                trigger="webhook",
                wake_now=True,
            )
        return "handled"
    return "ignored"


def note_webhook_status(event: HandoffEvent) -> None:
    """Record the channel's status as the webhook carried it (the start of its timeline)."""
    status = event.data.get("availability_status")
    if event.channel_id is None or not isinstance(status, str):
        return
    channel_status = event.data.get("status")
    with session_scope(history_engine()) as session:
        record_observation(
            session,
            channel_id=event.channel_id,
            availability_status=status,
            status=channel_status if isinstance(channel_status, str) else None,
            source=ObservationSource.WEBHOOK,
        )
