"""Waiting without holding a process: parked onboarding runs, woken by compare-and-set.

A waiting onboarding is a flow run ``Scheduled`` at the time it waits until (its deadline, or the
next retry of a key or a delivery), with a message saying what it waits for, since when and
until when. Prefect itself treats such a run as not yet due: no worker, runner or ``serve()``
takes it before that time. Its name is Prefect's own (``Scheduled``), so the deployment's
Upcoming runs in the UI list it; no behaviour depends on a name. When its time comes it runs
anyway, and the flow finds the deadline passed.

* a run created by a webhook, the signup redirect or the watcher is *born* parked
  (``create_parked_runs``), named and tagged once;
* the watcher, a status webhook or ``onboarding onboard`` wakes a parked run with ``wake_runs``:
  it proposes a plain ``Pending``, never forced (Prefect's ``PreventPendingTransitions`` refuses
  it from any ``Pending``, ``Running`` or cancelled state, so of racing wakers exactly one wins),
  then moves the run it won to ``Scheduled`` now, where any worker of the pool claims it;
* a woken run that finds something still to wait for (the channel flapped back to
  ``setting_up``, the client's permission, the partner's callback) hands over to a fresh parked
  run (``onboarding.orchestration.reconciler.hand_over``) and ends ``Completed`` saying so.

This package is the only code in the product that talks to Prefect's API client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import DeploymentFlowRunCreate
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterNextScheduledStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.states import Cancelling, Completed, Failed, Pending, Scheduled, to_state_create

__all__ = [
    "DEPLOYMENT_NAME",
    "ForeignFlowRun",
    "NoDeployment",
    "ParkedRun",
    "cancel_flow_runs",
    "close_orphaned_runs",
    "count_in_flight",
    "create_parked_runs",
    "current_flow_run",
    "forget_deployment",
    "is_parked",
    "lost_flow_runs",
    "make_due_again",
    "onboarding_deployment_id",
    "owner_state",
    "read_by_ids",
    "revive_stalled_runs",
    "run_name",
    "run_tags",
    "stalled_flow_runs",
    "sweep_now",
    "wake_runs",
]

READ_BATCH = 200  # flow runs read per request (the API's page limit)
BULK_CREATE = 100  # flow runs per creation request: the Prefect API's limit
BULK_ATTEMPTS = 4  # bulk requests for the runs of a chunk not yet created, before one by one
DEPLOYMENT_NAME = "onboard-channel/onboard-channel"
WATCH_DEPLOYMENT = "watch-channels/watch-channels"
_deployment_ids: dict[str, UUID] = {}


def _where(
    *,
    ids: list[UUID] | None = None,
    types: list[StateType] | None = None,
    tags: Iterable[str] | None = None,
    due_before: datetime | None = None,
) -> FlowRunFilter:
    """A flow-run filter: these ids, in these state types, with all these tags, due before."""
    return FlowRunFilter(
        id=FlowRunFilterId(any_=ids) if ids is not None else None,
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=types)) if types else None,
        tags=FlowRunFilterTags(all_=list(tags)) if tags is not None else None,
        next_scheduled_start_time=(
            FlowRunFilterNextScheduledStartTime(before_=due_before) if due_before else None
        ),
    )


async def read_by_ids(
    client: PrefectClient, ids: list[UUID], types: list[StateType] | None = None
) -> list[FlowRun]:
    """The runs of ``ids`` (in ``types``, when given), read :data:`READ_BATCH` per request."""
    runs: list[FlowRun] = []
    for start in range(0, len(ids), READ_BATCH):
        chunk = ids[start : start + READ_BATCH]
        runs += await client.read_flow_runs(flow_run_filter=_where(ids=chunk, types=types))
    return runs


def awaiting_state(until: datetime, message: str) -> Any:
    """The parked state: ``Scheduled`` at ``until``, its message saying what and since when."""
    now = datetime.now(UTC)
    return Scheduled(
        scheduled_time=until,
        message=f"{message} since {now:%Y-%m-%d %H:%M} UTC (until {until:%Y-%m-%d %H:%M} UTC)",
    )


def is_parked(flow_run: FlowRun, *, now: datetime | None = None) -> bool:
    """True when ``flow_run`` waits (``Scheduled``, its time not yet come), whatever its name."""
    state = flow_run.state
    if state is None or not state.is_scheduled() or state.state_details.scheduled_time is None:
        return False
    return state.state_details.scheduled_time > (now or datetime.now(UTC))


def current_flow_run() -> tuple[UUID | None, bool]:
    """The running flow run's id, and whether it came from a deployment."""
    from prefect.runtime import deployment, flow_run

    run_id = flow_run.id
    return (UUID(run_id) if run_id else None), bool(deployment.id)


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


class NoDeployment(Exception):
    """The ``onboard-channel`` deployment is not registered with the Prefect API in use."""


class ForeignFlowRun(Exception):
    """Prefect returned, for an idempotency key, a flow run that belongs to another onboarding."""


async def onboarding_deployment_id(*, fresh: bool = False) -> UUID:
    """The id of the ``onboard-channel`` deployment, looked up once per API URL (or ``fresh``)."""
    from prefect.settings import PREFECT_API_URL

    api = str(PREFECT_API_URL.value())
    if fresh or api not in _deployment_ids:
        async with get_client() as client:
            try:
                deployment = await client.read_deployment_by_name(DEPLOYMENT_NAME)
            except ObjectNotFound:
                _deployment_ids.pop(api, None)
                raise NoDeployment(
                    f"deployment {DEPLOYMENT_NAME!r} is not registered at {api}: "
                    "run `onboarding up`, or `prefect deploy --all` with deployments/prefect.yaml"
                ) from None
        _deployment_ids[api] = deployment.id
    return _deployment_ids[api]


def forget_deployment() -> None:
    """Look the deployment up again next time (it was deleted and may be re-created)."""
    _deployment_ids.clear()


async def sweep_now() -> str:
    """Start a sweep at once (``up`` does, as soon as it serves); returns its flow run id."""
    async with get_client() as client:
        deployment = await client.read_deployment_by_name(WATCH_DEPLOYMENT)
        flow_run = await client.create_flow_run_from_deployment(
            deployment.id, state=Scheduled(scheduled_time=datetime.now(UTC))
        )
    return str(flow_run.id)


def run_name(channel_id: str, client_id: str | None) -> str:
    """``onboard-<client>-<channel>``, the name people search for in the UI."""
    return f"onboard-{client_id or 'unknown'}-{channel_id}"


def run_tags(*, partner_id: str, client_id: str | None) -> list[str]:
    """The tags of every onboarding flow run: product, partner and client."""
    return ["onboarding", f"partner:{partner_id}", f"client:{client_id or 'unknown'}"]


@dataclass(frozen=True)
class ParkedRun:
    """A flow run to create for one history run."""

    history_key: str  # ``<installation>-<history run id>``: unique to this history run
    attempt: int  # a new flow run for the same history run (one was lost) counts up
    channel_id: str
    client_id: str | None
    partner_id: str
    trigger: str
    until: datetime
    wake_now: bool = False
    message: str | None = None

    @property
    def tag(self) -> str:
        """The tag that ties the flow run to its history run."""
        return f"history:{self.history_key}"


async def create_parked_runs(runs: Iterable[ParkedRun]) -> list[str]:
    """Create each onboarding's flow run parked (or due now); returns their ids, in order.

    Named and tagged once, here. The idempotency key is unique to the history run and attempt,
    so a retried creation returns the same flow run; one that comes back carrying another history
    run's tag raises :class:`ForeignFlowRun`. A deployment deleted (and perhaps re-created) since
    it was looked up is looked up once more.
    """
    runs = list(runs)
    try:
        return await _create_all(runs, await onboarding_deployment_id())
    except ObjectNotFound:
        forget_deployment()
    try:
        return await _create_all(runs, await onboarding_deployment_id())
    except ObjectNotFound:
        forget_deployment()
        raise NoDeployment(f"deployment {DEPLOYMENT_NAME!r} was deleted") from None


async def _create_all(runs: list[ParkedRun], deployment_id: UUID) -> list[str]:
    """Create the runs :data:`BULK_CREATE` per request, one request at a time (on SQLite a
    second one at once only makes both fail)."""
    created: list[str] = []
    async with get_client() as client:
        for start in range(0, len(runs), BULK_CREATE):
            created += await _create_chunk(client, deployment_id, runs[start : start + BULK_CREATE])
    return created


def _creation(run: ParkedRun) -> dict[str, Any]:
    """The arguments of ``create_flow_run_from_deployment`` for ``run``."""
    if run.wake_now:
        state = Scheduled(scheduled_time=datetime.now(UTC), message="due now: its channel settled")
    else:
        message = run.message or f"waiting for channel {run.channel_id} to settle"
        state = awaiting_state(run.until, message)
    return {
        "parameters": {
            "channel_id": run.channel_id,
            "client_id": run.client_id,
            "trigger": run.trigger,
        },
        "state": state,
        "tags": [*run_tags(partner_id=run.partner_id, client_id=run.client_id), run.tag],
        "name": run_name(run.channel_id, run.client_id),
        "idempotency_key": f"onboard-{run.history_key}-{run.attempt}",
    }


async def _create_bulk(
    client: PrefectClient, deployment_id: UUID, chunk: list[ParkedRun]
) -> list[UUID | None]:
    """One ``POST /deployments/{id}/create_flow_run/bulk`` (Prefect's REST API; its client has
    no method for it yet): each run's id, or None where the server did not create it.
    """
    body = []
    for run in chunk:
        fields = _creation(run)
        fields["state"] = to_state_create(fields["state"])
        body.append(DeploymentFlowRunCreate(**fields).model_dump(mode="json", exclude_unset=True))
    response = await client.request(
        "POST",
        "/deployments/{id}/create_flow_run/bulk",  # type: ignore[arg-type]
        path_params={"id": deployment_id},
        json=body,
    )
    return [
        UUID(result["flow_run_id"]) if result.get("status") == "CREATED" else None
        for result in response.json()["results"]
    ]


async def _create_chunk(
    client: PrefectClient, deployment_id: UUID, chunk: list[ParkedRun]
) -> list[str]:
    """Create up to :data:`BULK_CREATE` runs and check each came back with its own history tag.

    On SQLite a bulk request fails whole when another writer got in first: the runs not created
    are asked for again in bulk, then alone. A single run (a webhook's) is created alone.
    """
    ids: list[UUID | None] = [None] * len(chunk)
    created: dict[UUID, FlowRun] = {}
    try:
        for attempt in range(BULK_ATTEMPTS if len(chunk) > 1 else 0):
            missing = [i for i, flow_run_id in enumerate(ids) if flow_run_id is None]
            if not missing:
                break
            if attempt:
                await asyncio.sleep(0.1 * 2**attempt)
            again = await _create_bulk(client, deployment_id, [chunk[i] for i in missing])
            for i, flow_run_id in zip(missing, again, strict=True):
                ids[i] = flow_run_id
        for i in [i for i, flow_run_id in enumerate(ids) if flow_run_id is None]:
            flow_run = await client.create_flow_run_from_deployment(
                deployment_id, **_creation(chunk[i])
            )
            created[flow_run.id] = flow_run
            ids[i] = flow_run.id
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code == 404:  # the deployment was deleted
            raise ObjectNotFound(http_exc=exc) from exc
        raise
    unread = [flow_run_id for flow_run_id in ids if flow_run_id and flow_run_id not in created]
    created.update((run.id, run) for run in await read_by_ids(client, unread))
    for run, flow_run_id in zip(chunk, ids, strict=True):
        flow_run = created.get(flow_run_id) if flow_run_id else None
        if flow_run is None or run.tag not in flow_run.tags:
            raise ForeignFlowRun(
                f"flow run {flow_run_id} ({flow_run.name if flow_run else '?'}) came back for "
                f"onboarding {run.history_key} of channel {run.channel_id}, but belongs to "
                f"another one (tags {sorted(flow_run.tags) if flow_run else []})"
            )
    return [str(flow_run_id) for flow_run_id in ids]


async def cancel_flow_runs(flow_run_ids: Iterable[str], *, message: str) -> None:
    """Cancel the flow runs the way the UI does: ``Cancelling``, never forced (a waiting run
    ends ``Cancelled`` at once; the worker executing a running one stops it).
    """
    async with get_client() as client:
        for flow_run_id in _uuids(flow_run_ids):
            with contextlib.suppress(ObjectNotFound):
                await client.set_flow_run_state(flow_run_id, Cancelling(message=message))


async def lost_flow_runs(flow_run_ids: Iterable[str]) -> dict[str, bool]:
    """Which of the flow runs of active onboardings Prefect lost: ``{id: cancelled_by_person}``.

    Lost: missing (deleted, never created), ended without finishing the onboarding, or
    *stranded*: not ``Running``, not final, and of another deployment than the current
    ``onboard-channel`` one (deleting a deployment leaves its woken runs pointing at an id no
    worker serves). ``Cancelled`` means a person cancelled it. The current deployment is read
    fresh, after the runs, so a run created under a deployment re-created in between is never
    taken for stranded. Raises :class:`NoDeployment` when it is not registered.
    """
    flow_run_ids = list(flow_run_ids)
    ids = _uuids(flow_run_ids)
    lost = dict.fromkeys(set(map(str, flow_run_ids)) - set(map(str, ids)), False)
    if not ids:
        return lost
    async with get_client() as client:
        found = {str(run.id): run for run in await read_by_ids(client, ids)}
    current = await onboarding_deployment_id(fresh=True)
    for flow_run_id in map(str, ids):
        flow_run = found.get(flow_run_id)
        state = flow_run.state if flow_run else None
        if flow_run is None:
            lost[flow_run_id] = False
        elif state is None:
            continue
        elif state.type in (StateType.CANCELLED, StateType.CANCELLING):
            lost[flow_run_id] = True
        elif state.type in (StateType.COMPLETED, StateType.FAILED) or (
            not state.is_final() and not state.is_running() and flow_run.deployment_id != current
        ):
            lost[flow_run_id] = False
    return lost


async def wake_runs(
    flow_run_ids: Iterable[UUID | str], *, limit: int | None = None, concurrency: int = 8
) -> list[str]:
    """Wake parked runs by compare-and-set, at most ``limit`` of them, in the order given.

    Returns the ids this call woke: Prefect accepted this caller's ``Pending`` (it refuses it
    while another waker holds the run, or a worker claimed or runs it). Either way the run is
    due once and a worker's claim decides its one execution.
    """
    ids = _uuids(flow_run_ids)
    woken: list[str] = []
    gate = asyncio.Semaphore(concurrency)

    async def wake(client: PrefectClient, flow_run_id: UUID) -> None:
        async with gate:
            won = await client.set_flow_run_state(
                flow_run_id, Pending(message="woken: its channel settled"), force=False
            )
            if won.status != SetStateStatus.ACCEPT:
                return  # another waker won it, or it is executing or finished
            await client.set_flow_run_state(
                flow_run_id,
                Scheduled(scheduled_time=datetime.now(UTC), message="woken: its channel settled"),
            )
            woken.append(str(flow_run_id))

    async with get_client() as client:
        parked: list[UUID] = []
        now = datetime.now(UTC)
        for start in range(0, len(ids), READ_BATCH):
            if limit is not None and len(parked) >= limit:
                break
            chunk = ids[start : start + READ_BATCH]
            found = {run.id: run for run in await read_by_ids(client, chunk, [StateType.SCHEDULED])}
            parked += [i for i in chunk if i in found and is_parked(found[i], now=now)]
        await asyncio.gather(*(wake(client, run_id) for run_id in parked[:limit]))
    return woken


async def count_in_flight(tags: Iterable[str]) -> int:
    """Runs tagged with all of ``tags`` that are due now or executing (not parked, not final)."""
    tags = list(tags)
    async with get_client() as client:
        executing = await client.count_flow_runs(
            flow_run_filter=_where(tags=tags, types=[StateType.PENDING, StateType.RUNNING])
        )
        due = await client.count_flow_runs(
            flow_run_filter=_where(
                tags=tags, types=[StateType.SCHEDULED], due_before=datetime.now(UTC)
            )
        )
    return executing + due


def _uuids(flow_run_ids: Iterable[UUID | str]) -> list[UUID]:
    """The ids as UUIDs, skipping any that is not one (nothing to wake or revive there)."""
    ids: list[UUID] = []
    for run_id in flow_run_ids:
        with contextlib.suppress(ValueError):
            ids.append(run_id if isinstance(run_id, UUID) else UUID(str(run_id)))
    return ids


async def revive_stalled_runs(
    flow_run_ids: Iterable[UUID | str],
    *,
    older_than: datetime,
    stale: Collection[str] | None = None,
    unstarted_before: datetime | None = None,
) -> list[str]:
    """Make due again the runs whose process died: ``Crashed``, or stuck ``Pending``/``Running``.

    Of ``flow_run_ids``, those in ``stale`` (all, when not given) have a history that has not
    moved since ``older_than`` (the owner lease): ``Crashed``, or in a state also older than
    that, they are re-driven. A run that never started (``Crashed``, or ``Pending`` since before
    ``unstarted_before``: a wake or claim cut off half-way) is re-driven at once. Each carries on
    from the steps its history recorded. Returns the ids rescheduled.
    """
    stale_ids = None if stale is None else set(map(str, stale))
    async with get_client() as client:
        types = [StateType.PENDING, StateType.RUNNING, StateType.CRASHED]
        runs = await read_by_ids(client, _uuids(flow_run_ids), types)
        stalled = [run for run in runs if _stalled(run, stale_ids, older_than, unstarted_before)]
        message = "due again: the process that ran it stopped answering"
        return await make_due_again(client, stalled, message)


async def make_due_again(client: PrefectClient, runs: Iterable[FlowRun], message: str) -> list[str]:
    """Move each run to ``Scheduled`` now, for any worker; returns their ids."""
    runs = list(runs)
    for flow_run in runs:
        state = Scheduled(scheduled_time=datetime.now(UTC), message=message)
        await client.set_flow_run_state(flow_run.id, state)
    return [str(flow_run.id) for flow_run in runs]


def _stalled(
    flow_run: FlowRun,
    stale: set[str] | None,
    older_than: datetime,
    unstarted_before: datetime | None,
) -> bool:
    """Whether nothing will ever move ``flow_run`` on (see :func:`revive_stalled_runs`)."""
    state = flow_run.state
    if state is None:
        return False
    never_started = flow_run.run_count == 0 and unstarted_before is not None
    if never_started and (
        state.is_crashed() or (state.is_pending() and state.timestamp <= unstarted_before)
    ):
        return True
    if stale is not None and str(flow_run.id) not in stale:
        return False
    # Crashed is final (the engine, or a process that died): nothing runs it.
    return state.is_crashed() or state.timestamp <= older_than


async def stalled_flow_runs(tags: Iterable[str], *, older_than: datetime) -> list[str]:
    """Ids of runs tagged with all of ``tags`` whose process is gone or may be: ``Pending``/
    ``Running`` since before ``older_than`` (of the first 200: executing runs are capped by
    ``ONBOARDING_WAKE_LIMIT``), and the 200 most recently ``Crashed``.
    """
    tags = list(tags)
    async with get_client() as client:
        alive = await client.read_flow_runs(
            flow_run_filter=_where(tags=tags, types=[StateType.PENDING, StateType.RUNNING]),
            limit=READ_BATCH,
        )
        crashed = await client.read_flow_runs(
            flow_run_filter=_where(tags=tags, types=[StateType.CRASHED]),
            sort=FlowRunSort.END_TIME_DESC,
            limit=READ_BATCH,
        )
    stale = [run for run in alive if run.state is not None and run.state.timestamp <= older_than]
    return [str(run.id) for run in [*stale, *crashed]]


async def close_orphaned_runs(outcomes: dict[str, tuple[bool, str]]) -> list[str]:
    """Give each flow run its final state, ``{flow_run_id: (succeeded, message)}``: its
    onboarding finished in the history, but its process died before it could tell Prefect.
    """
    async with get_client() as client:
        for flow_run_id, (succeeded, message) in outcomes.items():
            state = Completed(message=message) if succeeded else Failed(message=message)
            await client.set_flow_run_state(UUID(flow_run_id), state)
    return list(outcomes)
