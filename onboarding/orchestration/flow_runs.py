"""Waiting without holding a process: parked onboarding runs, woken by compare-and-set.

A waiting onboarding is a flow run in a ``Scheduled`` state named ``AwaitingChannel``, scheduled at
its creation time (so the Prefect UI's default Runs view, the past 7 days, shows it) with a message
that says what it waits for and since when. No executor takes a parked run (they skip that name),
and Prefect's late-runs service never marks it ``Late`` (it only looks at runs named
``Scheduled``). The deadline is ours to enforce: the watcher wakes overdue runs, which then fail
as timed out.

* a run created by a webhook, the signup redirect or the watcher is *born* parked
  (``create_parked_runs``), named and tagged once, so it starts executing only once, when its
  channel settles;
* the watcher, a status webhook or ``onboarding onboard`` wakes a parked run with ``wake_runs``: it
  proposes a plain ``Pending``, never forced. Prefect's ``PreventPendingTransitions`` rule
  refuses that from any ``Pending`` (woken or claimed) or ``Running`` state, so of several wakers
  racing one wins and the others are refused: one execution, one key;
* a woken run that finds something still to wait for (the channel flapped back to
  ``setting_up``, the client's permission, the partner's callback) hands over to a fresh parked
  run (``onboarding.orchestration.reconciler.hand_over``) and ends ``Completed`` saying so.

This module and the executor are the only code in the product that talk to Prefect's API client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
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
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import (
    ConcurrencyLimitConfig,
    ConcurrencyLimitStrategy,
    FlowRun,
    StateType,
)
from prefect.client.schemas.responses import SetStateStatus
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.states import Cancelled, Completed, Failed, Pending, Scheduled, to_state_create

from onboarding.orchestration.executor import PARKED, WOKEN

__all__ = [
    "AWAITING_CHANNEL",
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
    "onboarding_deployment_id",
    "one_at_a_time",
    "owner_state",
    "revive_stalled_runs",
    "run_name",
    "run_tags",
    "stalled_flow_runs",
    "sweep_now",
    "wake_runs",
]

AWAITING_CHANNEL = PARKED
READ_BATCH = 200  # flow runs read per request (the API's page limit)


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


DEPLOYMENT_NAME = "onboard-channel/onboard-channel"
_deployment_ids: dict[str, UUID] = {}


async def onboarding_deployment_id() -> UUID:
    """The id of the ``onboard-channel`` deployment (looked up once per API URL)."""
    from prefect.settings import PREFECT_API_URL

    api = str(PREFECT_API_URL.value())
    if api in _deployment_ids:
        return _deployment_ids[api]
    async with get_client() as client:
        return await _read_deployment_id(client)


async def _read_deployment_id(client: PrefectClient) -> UUID:
    """Read the ``onboard-channel`` deployment's id now, and remember it for this API URL."""
    from prefect.settings import PREFECT_API_URL

    api = str(PREFECT_API_URL.value())
    try:
        deployment = await client.read_deployment_by_name(DEPLOYMENT_NAME)
    except ObjectNotFound:
        _deployment_ids.pop(api, None)
        raise NoDeployment(
            f"deployment {DEPLOYMENT_NAME!r} is not registered at {api}: "
            "run `onboarding up` or `python -m deployments.serve`"
        ) from None
    _deployment_ids[api] = deployment.id
    return deployment.id


WATCH_DEPLOYMENT = "watch-channels/watch-channels"


async def sweep_now() -> str:
    """Start a sweep at once (``up`` does, as soon as it serves); returns its flow run id."""
    async with get_client() as client:
        deployment = await client.read_deployment_by_name(WATCH_DEPLOYMENT)
        flow_run = await client.create_flow_run_from_deployment(
            deployment.id, state=Scheduled(scheduled_time=datetime.now(UTC))
        )
    return str(flow_run.id)


def one_at_a_time() -> ConcurrencyLimitConfig:
    """A deployment concurrency limit of one run, a new run cancelled while one is going."""
    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


def forget_deployment() -> None:
    """Look the deployment up again next time (it was deleted and may be re-created)."""
    _deployment_ids.clear()


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
    so a retried creation returns the same flow run; a flow run that comes back for a key but
    carries another history run's tag is an error naming both, never a silent attach. A
    deployment deleted (and perhaps re-created) since it was looked up is looked up once more.
    """
    runs = list(runs)
    try:
        return await _create_parked_runs(runs, await onboarding_deployment_id())
    except ObjectNotFound:
        forget_deployment()
    try:
        return await _create_parked_runs(runs, await onboarding_deployment_id())
    except ObjectNotFound:
        forget_deployment()
        raise NoDeployment(f"deployment {DEPLOYMENT_NAME!r} was deleted") from None


BULK_CREATE = 100  # flow runs per creation request: the Prefect API's limit
BULK_ATTEMPTS = 4  # bulk requests for the runs of a chunk not yet created, before one by one


def _creation(run: ParkedRun) -> dict[str, Any]:
    """The arguments of ``create_flow_run_from_deployment`` for ``run``."""
    state = (
        woken_state()
        if run.wake_now
        else awaiting_state(
            run.until, run.message or f"waiting for channel {run.channel_id} to settle"
        )
    )
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


async def _create_parked_runs(runs: list[ParkedRun], deployment_id: UUID) -> list[str]:
    """Create the runs ``BULK_CREATE`` per request, one request at a time.

    Prefect's REST API creates up to 100 runs of a deployment in one request and one
    transaction (``POST /deployments/{id}/create_flow_run/bulk``); its Python client has no
    method for that yet, so this sends what its ``create_flow_run_from_deployment`` sends, as a
    list, through the client's public ``request``. One request at a time: on SQLite a second one
    at once only makes both fail. Runs a bulk request reports as not created are asked for again
    in bulk, then created alone with the client's method; a single run (a webhook's) is created
    alone from the start. A bulk answer holds only ids, so those runs are read back (one request)
    to check their tags.
    """

    async def create_bulk(client: PrefectClient, chunk: list[ParkedRun]) -> list[UUID | None]:
        body = []
        for run in chunk:
            fields = _creation(run)
            fields["state"] = to_state_create(fields["state"])
            body.append(
                DeploymentFlowRunCreate(**fields).model_dump(mode="json", exclude_unset=True)
            )
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

    async def create(client: PrefectClient, chunk: list[ParkedRun]) -> list[str]:
        ids: list[UUID | None] = [None] * len(chunk)
        alone: dict[UUID, FlowRun] = {}  # created one by one: the answer is the whole run
        try:
            # On SQLite a bulk request fails whole when another writer got in first
            # ("database is locked"): the runs not created are asked for again, then alone.
            for attempt in range(BULK_ATTEMPTS if len(chunk) > 1 else 0):
                missing = [i for i, flow_run_id in enumerate(ids) if flow_run_id is None]
                if not missing:
                    break
                if attempt:
                    await asyncio.sleep(0.1 * 2**attempt)
                again = await create_bulk(client, [chunk[i] for i in missing])
                for i, flow_run_id in zip(missing, again, strict=True):
                    ids[i] = flow_run_id
            for i, flow_run_id in enumerate(ids):
                if flow_run_id is None:
                    flow_run = await client.create_flow_run_from_deployment(
                        deployment_id, **_creation(chunk[i])
                    )
                    alone[flow_run.id] = flow_run
                    ids[i] = flow_run.id
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code == 404:  # the deployment was deleted
                raise ObjectNotFound(http_exc=exc) from exc
            raise
        created_ids = [flow_run_id for flow_run_id in ids if flow_run_id is not None]
        unread = [flow_run_id for flow_run_id in created_ids if flow_run_id not in alone]
        created = list(alone.values())
        if unread:
            created += await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=unread)), limit=len(unread)
            )
        tags = {flow_run.id: (flow_run.name, flow_run.tags) for flow_run in created}
        for run, flow_run_id in zip(chunk, created_ids, strict=True):
            name, run_tags_ = tags.get(flow_run_id, ("?", []))
            if run.tag not in run_tags_:
                raise ForeignFlowRun(
                    f"flow run {flow_run_id} ({name}) came back for onboarding "
                    f"{run.history_key} of channel {run.channel_id}, but belongs to another one "
                    f"(tags {sorted(run_tags_)})"
                )
        return [str(flow_run_id) for flow_run_id in created_ids]

    created: list[str] = []
    async with get_client() as client:
        for start in range(0, len(runs), BULK_CREATE):
            created += await create(client, runs[start : start + BULK_CREATE])
    return created


async def cancel_flow_runs(flow_run_ids: Iterable[str], *, message: str) -> None:
    """End the given flow runs ``Cancelled`` (their onboarding was cancelled)."""
    async with get_client() as client:
        for flow_run_id in _uuids(flow_run_ids):
            with contextlib.suppress(ObjectNotFound):
                await client.set_flow_run_state(flow_run_id, Cancelled(message=message), force=True)


async def lost_flow_runs(flow_run_ids: Iterable[str]) -> dict[str, bool]:
    """Which of the flow runs of active onboardings Prefect lost: ``{id: cancelled_by_person}``.

    Missing (deleted, or never created) or ended without finishing the onboarding counts as
    lost; ``Cancelled`` means a person cancelled it. So does a run *stranded* by a deleted
    deployment: not ``Running``, not final, and of another deployment than the current
    ``onboard-channel`` one. Deleting a deployment deletes its ``Scheduled`` runs (the parked
    ones: missing, so lost) but leaves the woken, ``Claimed`` and ``Revived`` ones pointing at
    an id no executor serves, and a re-created deployment has a new id: nobody would ever run
    them. A ``Running`` run is never stranded: an executor is executing it (it finishes, or hands
    over to the current deployment), or ``onboarding onboard`` is, with no deployment at all.

    The current deployment is read fresh, after the runs: a run created under a deployment
    re-created in between already carries the new id, so no run of the current deployment is
    ever taken for stranded. Raises :class:`NoDeployment` when it is not registered (nothing
    could be re-created); the id read is remembered for :func:`onboarding_deployment_id`.
    """
    flow_run_ids = list(flow_run_ids)
    wanted = {str(run_id): run_id for run_id in _uuids(flow_run_ids)}
    lost = {
        flow_run_id: False for flow_run_id in map(str, flow_run_ids) if flow_run_id not in wanted
    }
    if not flow_run_ids:
        return lost
    found: dict[str, FlowRun] = {}
    ids = list(wanted.values())
    async with get_client() as client:
        for start in range(0, len(ids), READ_BATCH):
            batch = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=ids[start : start + READ_BATCH])
                )
            )
            found.update((str(run.id), run) for run in batch)
        current = await _read_deployment_id(client)
    for flow_run_id in wanted:
        flow_run = found.get(flow_run_id)
        state = flow_run.state if flow_run else None
        if flow_run is None:
            lost[flow_run_id] = False
        elif state is None:
            continue
        elif state.type in (StateType.CANCELLED, StateType.CANCELLING):
            lost[flow_run_id] = True
        elif state.type in (StateType.COMPLETED, StateType.FAILED) or _stranded(flow_run, current):
            lost[flow_run_id] = False
    return lost


def _stranded(flow_run: FlowRun, deployment_id: UUID) -> bool:
    """Waiting to be run under a deployment other than ``deployment_id``: nobody will run it."""
    state = flow_run.state
    return (
        state is not None
        and not state.is_final()
        and not state.is_running()
        and flow_run.deployment_id != deployment_id
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
        for start in range(0, len(ids), READ_BATCH):
            if limit is not None and len(parked) >= limit:
                break
            batch = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=ids[start : start + READ_BATCH]),
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])
                    ),
                )
            )
            order = {run_id: i for i, run_id in enumerate(ids[start : start + READ_BATCH])}
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

    An executor killed mid-run leaves its runs ``Pending`` or ``Running`` for ever, unless
    Prefect's heartbeat-based zombie automation is installed, which marks them ``Crashed``. The
    caller passes only runs whose history has not moved since ``older_than`` (the owner lease);
    a ``Crashed`` run, or one whose state is also older than that, is re-driven as itself
    (``Scheduled`` now): it claims its history run again and carries on from the steps recorded
    as done. Returns the ids rescheduled.
    """
    ids = _uuids(flow_run_ids)
    revived: list[str] = []
    async with get_client() as client:
        for start in range(0, len(ids), READ_BATCH):
            stalled = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=ids[start : start + READ_BATCH]),
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=STALLED_TYPES)),
                )
            )
            for flow_run in stalled:
                state = flow_run.state
                # Crashed is final (Prefect's zombie automation, or the engine): nothing runs it.
                alive = state is not None and not state.is_crashed()
                if alive and state.timestamp > older_than:
                    continue
                await client.set_flow_run_state(
                    flow_run.id,
                    Scheduled(scheduled_time=datetime.now(UTC), name="Revived"),
                    force=True,
                )
                revived.append(str(flow_run.id))
    return revived


async def stalled_flow_runs(tags: Iterable[str], *, older_than: datetime) -> list[str]:
    """Ids of runs tagged with all of ``tags`` whose process is gone or may be.

    ``Pending``/``Running`` since before ``older_than`` (at most 200: onboarding runs executing at
    once are capped by ``ONBOARDING_WAKE_LIMIT``, so this holds them all plus the leftovers of a
    dead process), and the 200 most recently ``Crashed`` at any age: Prefect's zombie automation
    marks a run whose executor was killed ``Crashed`` even when its onboarding had just finished.
    The watcher asks every sweep.
    """
    tag_filter = FlowRunFilterTags(all_=list(tags))
    async with get_client() as client:
        alive = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=tag_filter,
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.PENDING, StateType.RUNNING])
                ),
            ),
            limit=READ_BATCH,
        )
        crashed = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=tag_filter,
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CRASHED])),
            ),
            sort=FlowRunSort.END_TIME_DESC,
            limit=READ_BATCH,
        )
    stale = [run for run in alive if run.state is not None and run.state.timestamp <= older_than]
    return [str(run.id) for run in [*stale, *crashed]]


async def close_orphaned_runs(outcomes: dict[str, tuple[bool, str]]) -> list[str]:
    """Give each flow run its final state: ``{flow_run_id: (succeeded, message)}``.

    For runs whose onboarding is finished in the history but whose process died before it could
    report the final state to Prefect: left alone they would show ``Running`` for ever, or
    ``Crashed`` for an onboarding that completed.
    """
    closed: list[str] = []
    async with get_client() as client:
        for flow_run_id, (succeeded, message) in outcomes.items():
            state = Completed(message=message) if succeeded else Failed(message=message)
            await client.set_flow_run_state(UUID(flow_run_id), state, force=True)
            closed.append(flow_run_id)
    return closed
