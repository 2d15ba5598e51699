"""Waiting without holding a process: parked onboarding runs, woken by compare-and-set.

A waiting onboarding is a flow run in a ``Scheduled`` state named ``AwaitingChannel``, scheduled at
its creation time (so the Prefect UI's default Runs view, the past 7 days, shows it) with a message
that says what it waits for and since when. No executor takes a parked run (they skip that name),
and Prefect's late-runs service never marks it ``Late`` (it only looks at runs named
``Scheduled``). The deadline is ours to enforce: the watcher wakes overdue runs, which then fail
as timed out.

* a run created by a webhook or the watcher is *born* parked (``create_waiting_run``), so it starts
  executing only once, when its channel settles;
* the watcher, a status webhook or ``onboarding onboard`` wakes a parked run with ``wake_runs``: it
  proposes a plain ``Pending``, never forced. Prefect's ``PreventPendingTransitions`` rule
  refuses that from any ``Pending`` (woken or claimed) or ``Running`` state, so of several wakers
  racing one wins and the others are refused: one execution, one key;
* a woken run that finds its channel still ``setting_up`` (a status that flapped back) hands over
  to a fresh parked run (``park_successor``) and ends ``Completed`` saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import ObjectNotFound
from prefect.states import Completed, Failed, Pending, Scheduled

from onboarding.orchestration.executor import PARKED, WOKEN

__all__ = [
    "AWAITING_CHANNEL",
    "close_orphaned_runs",
    "count_in_flight",
    "create_waiting_run",
    "current_flow_run",
    "is_parked",
    "label_direct_run",
    "owner_state",
    "park_successor",
    "revive_stalled_runs",
    "stalled_flow_runs",
    "wake_runs",
]

AWAITING_CHANNEL = PARKED


def awaiting_state(until: datetime, message: str) -> Any:
    """The parked state: ``AwaitingChannel``, since now, its message saying what and until when."""
    now = datetime.now(UTC)
    return Scheduled(
        scheduled_time=now,
        name=AWAITING_CHANNEL,
        message=f"{message} since {now:%Y-%m-%d %H:%M} UTC (deadline {until:%Y-%m-%d %H:%M} UTC)",
    )


def woken_state() -> Any:
    """The state a waker proposes: a plain ``Pending`` (an executor claims it next)."""
    return Pending(name=WOKEN, message="woken: the channel settled or its deadline passed")


def is_parked(flow_run: FlowRun) -> bool:
    """True when ``flow_run`` waits for its channel (parked, holding no process)."""
    state = flow_run.state
    return bool(state and state.is_scheduled() and state.name == AWAITING_CHANNEL)


def current_flow_run() -> tuple[UUID | None, bool]:
    """The running flow run's id, and whether it came from a deployment."""
    from prefect.runtime import deployment, flow_run

    run_id = flow_run.id
    return (UUID(run_id) if run_id else None), bool(deployment.id)


async def label_direct_run(*, name: str, tags: Iterable[str]) -> None:
    """Name and tag a flow run started by calling the flow (``onboarding onboard``, tests).

    Runs of the deployment get their name and tags when they are created and are never renamed;
    a direct call has no creator that knows the client id, so the run labels itself once.
    """
    run_id, _ = current_flow_run()
    if run_id is None:
        return
    async with get_client() as client:
        await client.update_flow_run(run_id, name=name, tags=sorted(set(tags)))


async def owner_state(flow_run_id: str) -> str:
    """``"gone"`` (final or deleted), ``"waiting"`` (scheduled/paused) or ``"running"``."""
    async with get_client() as client:
        try:
            flow_run = await client.read_flow_run(UUID(flow_run_id))
        except (ObjectNotFound, ValueError):
            return "gone"
    state = flow_run.state
    if state is None or state.is_final():
        return "gone"
    if state.is_scheduled() or state.is_paused():
        return "waiting"
    return "running"


async def park_successor(
    *, channel_id: str, until: datetime, message: str, attempt: int
) -> FlowRun:
    """Create a fresh parked run of this run's deployment to wait on in its place.

    For a woken run that finds its channel still ``setting_up``: the new run has this run's
    parameters, name and tags and a fresh idempotency key (this run's id and ``attempt``), so a
    retry of the same hand-over returns the same successor. The caller records the successor as
    the onboarding's flow run and ends this run ``Completed``.
    """
    from prefect.runtime import deployment, flow_run

    if flow_run.id is None or not deployment.id:
        raise RuntimeError("only a flow run of a deployment can hand over to a parked run")
    return await create_waiting_run(
        deployment_id=UUID(deployment.id),
        parameters={**flow_run.parameters, "trigger": "rewait"},
        name=flow_run.name,
        tags=flow_run.tags,
        until=until,
        idempotency_key=f"onboard-{channel_id}-after-{flow_run.id}-{attempt}",
        message=message,
    )


async def create_waiting_run(
    *,
    deployment_id: UUID,
    parameters: dict[str, Any],
    name: str,
    tags: Iterable[str],
    until: datetime,
    idempotency_key: str,
    message: str = "waiting for the channel to leave setting_up",
    wake_now: bool = False,
    client: PrefectClient | None = None,
) -> FlowRun:
    """Create an onboarding run already parked (or due now), de-duplicated by its key.

    Pass ``client`` when creating many: one client's pooled connections create runs about three
    times faster than a client per run on a PostgreSQL-backed server (bench/bench_waiting.py).
    """
    state = woken_state() if wake_now else None
    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(get_client())
        return await client.create_flow_run_from_deployment(
            deployment_id,
            parameters=parameters,
            name=name,
            tags=list(tags),
            idempotency_key=idempotency_key,
            state=state or awaiting_state(until, message),
        )


async def wake_runs(
    flow_run_ids: Iterable[UUID | str], *, limit: int | None = None, concurrency: int = 8
) -> list[str]:
    """Wake parked runs by compare-and-set, at most ``limit`` of them, in the order given.

    Returns the ids this call woke: a run counts only when Prefect accepted the wake
    proposal, so of concurrent wakers exactly one reports it. The runs are read 200 per request
    to find the parked ones; each of those is read once more right before its proposal.
    """
    ids = _uuids(flow_run_ids)
    woken: list[str] = []
    gate = asyncio.Semaphore(concurrency)

    async def wake(client: PrefectClient, flow_run_id: UUID) -> None:
        async with gate:
            # Read again right before proposing: a run found parked in the batch read may have
            # been woken, executed and finished since, and Prefect accepts Pending from a final
            # state; this keeps that window to one round trip.
            if not is_parked(await client.read_flow_run(flow_run_id)):
                return
            result = await client.set_flow_run_state(flow_run_id, woken_state(), force=False)
            if result.status == SetStateStatus.ACCEPT:
                woken.append(str(flow_run_id))

    async with get_client() as client:
        parked: list[UUID] = []
        for start in range(0, len(ids), 200):
            if limit is not None and len(parked) >= limit:
                break
            batch = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=ids[start : start + 200]),
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])
                    ),
                )
            )
            order = {run_id: i for i, run_id in enumerate(ids[start : start + 200])}
            parked += sorted((run.id for run in batch if is_parked(run)), key=order.__getitem__)
        await asyncio.gather(*(wake(client, run_id) for run_id in parked[:limit]))
    return woken


async def count_in_flight(tags: Iterable[str]) -> int:
    """Runs tagged with all of ``tags`` that are due now or executing (not parked, not final)."""
    async with get_client() as client:
        return await client.count_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=list(tags)),
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(
                        any_=[StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING]
                    ),
                    name=FlowRunFilterStateName(not_any_=[AWAITING_CHANNEL]),
                ),
            )
        )


def _uuids(flow_run_ids: Iterable[UUID | str]) -> list[UUID]:
    """The ids as UUIDs, skipping any that is not one (nothing to wake or revive there)."""
    ids: list[UUID] = []
    for run_id in flow_run_ids:
        try:
            ids.append(run_id if isinstance(run_id, UUID) else UUID(str(run_id)))
        except ValueError:
            continue
    return ids


STALLED_TYPES = [StateType.PENDING, StateType.RUNNING, StateType.CRASHED]


async def revive_stalled_runs(
    flow_run_ids: Iterable[UUID | str], *, older_than: datetime
) -> list[str]:
    """Make due again the runs whose process died: ``Crashed``, or stuck ``Pending``/``Running``.

    A serving process or worker killed mid-run leaves its runs ``Running`` for ever (Prefect's
    heartbeat-based zombie detection is off by default), holding their deployment concurrency
    slots. The caller passes only runs whose history has not moved since ``older_than`` (the
    owner lease); a run whose state is also older than that is re-driven as itself (``Scheduled``
    now, which frees its slot): it claims its history run again and carries on from the steps
    recorded as done. Returns the ids rescheduled.
    """
    ids = _uuids(flow_run_ids)
    revived: list[str] = []
    async with get_client() as client:
        for start in range(0, len(ids), 200):
            stalled = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=ids[start : start + 200]),
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=STALLED_TYPES)),
                )
            )
            for flow_run in stalled:
                since = flow_run.state.timestamp if flow_run.state else None
                if since is not None and since > older_than:
                    continue
                await client.set_flow_run_state(
                    flow_run.id,
                    Scheduled(scheduled_time=datetime.now(UTC), name="Revived"),
                    force=True,
                )
                revived.append(str(flow_run.id))
    return revived


async def stalled_flow_runs(tags: Iterable[str], *, older_than: datetime) -> list[str]:
    """Ids of runs tagged with all of ``tags``, ``Pending``/``Running`` since before ``older_than``.

    At most 200: onboarding runs executing at once are capped by ``ONBOARDING_WAKE_LIMIT``, so
    this holds them all plus the leftovers of a dead process; the watcher asks every sweep.
    """
    async with get_client() as client:
        flow_runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=list(tags)),
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.PENDING, StateType.RUNNING])
                ),
            ),
            limit=200,
        )
    return [
        str(run.id)
        for run in flow_runs
        if run.state is not None and run.state.timestamp <= older_than
    ]


async def close_orphaned_runs(outcomes: dict[str, tuple[bool, str]]) -> list[str]:
    """Give each flow run its final state: ``{flow_run_id: (succeeded, message)}``.

    For runs whose onboarding is finished in the history but whose process died before it could
    report the final state to Prefect: left alone they would show ``Running`` for ever.
    """
    closed: list[str] = []
    async with get_client() as client:
        for flow_run_id, (succeeded, message) in outcomes.items():
            state = Completed(message=message) if succeeded else Failed(message=message)
            await client.set_flow_run_state(UUID(flow_run_id), state, force=True)
            closed.append(flow_run_id)
    return closed
