"""Starting and waking onboardings from outside a flow: partner webhooks and the watcher.

An onboarding is started by recording its history run first and then creating its Prefect flow
run *parked* (see ``tasks/flow_runs.py``), with an idempotency key made of the channel and the
history run: redelivered webhooks, a webhook racing the watcher, or a retried replay all land
on the same flow run. Why not a Prefect event and a deployment trigger: a trigger cannot create a
run in a waiting state, and ``emit_event`` is fire-and-forget, so the inbox could not know whether
Prefect really got the event; creating the run directly answers both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.exceptions import ObjectNotFound

from onboarding.receiver.events import HandoffEvent
from onboarding.store import (
    ObservationSource,
    OnboardingRun,
    RunState,
    get_active_run,
    record_observation,
    session_scope,
    update_run,
)
from tasks.flow_runs import create_waiting_run, wake_runs
from tasks.history import open_history_runs
from tasks.resources import history_engine, partner_id

__all__ = [
    "DEPLOYMENT_NAME",
    "NoDeployment",
    "Started",
    "dispatch_event",
    "onboarding_deployment_id",
    "start_onboarding",
    "start_onboardings",
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
    [started] = await start_onboardings(
        [(channel_id, client_id)], trigger=trigger, wake_now=wake_now
    )
    return started


async def start_onboardings(
    channels: Sequence[tuple[str, str | None]],
    *,
    trigger: str,
    wake_now: bool = False,
    concurrency: int = 4,
) -> list[Started]:
    """:func:`start_onboarding` for many ``(channel_id, client_id)`` at once.

    The history side is two transactions for the whole batch (open the runs; record their flow
    runs); flow-run creations go to Prefect ``concurrency`` at a time, since on SQLite more only
    adds lock contention.
    """
    with session_scope(history_engine()) as session:
        runs = open_history_runs(
            session,
            channels=[(channel_id, client_id or "unknown") for channel_id, client_id in channels],
            trigger=trigger,
        )
    results: dict[str, Started] = {}
    to_create: list[OnboardingRun] = []
    for run in runs:
        if run.state == RunState.COMPLETED or run.id is None:
            results[run.channel_id] = Started(
                run.channel_id, run.id, None, False, "already onboarded"
            )
        elif run.flow_run_id is not None:
            results[run.channel_id] = Started(
                run.channel_id, run.id, run.flow_run_id, False, "onboarding already running"
            )
        else:
            to_create.append(run)
    if wake_now:
        await wake_runs([r.flow_run_id for r in results.values() if r.flow_run_id])
    if to_create:
        created = await _create_flow_runs(to_create, trigger, wake_now, concurrency)
        with session_scope(history_engine()) as session:
            for run, flow_run_id in created:
                update_run(
                    session,
                    run_id=run.id,
                    flow_run_id=flow_run_id,
                    state=RunState.PENDING if wake_now else RunState.WAITING,
                    stage="queued" if wake_now else "waiting for the channel",
                )
                results[run.channel_id] = Started(
                    run.channel_id, run.id, flow_run_id, True, "onboarding started"
                )
    return [results[channel_id] for channel_id, _ in channels if channel_id in results]


async def _create_flow_runs(
    runs: list[OnboardingRun], trigger: str, wake_now: bool, concurrency: int
) -> list[tuple[OnboardingRun, str]]:
    """Create each run's parked flow run; idempotent per (channel, history run)."""
    from flows.onboard import run_name

    deployment_id = await onboarding_deployment_id()
    partner = partner_id()
    gate = asyncio.Semaphore(concurrency)

    async def create(client: PrefectClient, run: OnboardingRun) -> tuple[OnboardingRun, str]:
        async with gate:
            flow_run = await create_waiting_run(
                deployment_id=deployment_id,
                parameters={
                    "channel_id": run.channel_id,
                    "client_id": run.client_id,
                    "trigger": trigger,
                },
                name=run_name(run.channel_id, run.client_id),
                tags=["onboarding", f"partner:{partner}", f"client:{run.client_id}"],
                until=run.deadline_at,
                idempotency_key=f"onboard-{run.channel_id}-run{run.id}",
                wake_now=wake_now,
                client=client,
            )
        return run, str(flow_run.id)

    async with get_client() as client:
        return list(await asyncio.gather(*(create(client, run) for run in runs)))


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
