"""The executor: one long-lived process that runs many flow runs at once, in-process.

It serves the deployments it is given. Every ``poll`` seconds it asks the Prefect API for the due
runs of those deployments (``Scheduled`` with their time come, except parked ones, and woken ones),
claims each through Prefect's normal orchestration and runs the ones it won as asyncio tasks, at
most ``limit`` at once. Claiming is proposing ``Pending`` named :data:`CLAIMED`, never forced:
Prefect's ``PreventPendingTransitions`` rule accepts it only from ``Scheduled`` or from a
``Pending`` of another name (a woken run), so when several executors race for a run exactly one
gets ``ACCEPT``; the rest get ``ABORT`` and move on. A won run is executed with
:func:`prefect.flow_engine.run_flow`, the function Prefect's own engine entry point calls:
states, logs, task runs and artifacts reach the API exactly as from a flow-run process.

Runs execute on the executor's own event loop, which runs in a thread of its own (see
:func:`serve_until_signalled`): Prefect's engine installs a SIGTERM handler only when it runs in
the main thread, so here the main thread keeps the signals and decides how to stop.

Deployments deleted while it serves (say in the Prefect UI) come back: see
:meth:`Executor.keep_deployments`.

Stopping: no new claims; runs in flight get ``grace`` seconds to finish; any still running are
handed back (``Scheduled`` now, named :data:`HANDED_BACK`, claimable by any executor) and the
process exits without letting them crash, so no ``flow_crashed`` alert is raised. Their flow code
resumes from the steps the history recorded as done.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from prefect import Flow, get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterId,
    FlowRunFilterNextScheduledStartTime,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.client.schemas.sorting import FlowRunSort
from prefect.context import AsyncClientContext, SyncClientContext
from prefect.flow_engine import run_flow
from prefect.states import Pending, Scheduled

__all__ = [
    "CLAIMED",
    "HANDED_BACK",
    "PARKED",
    "WOKEN",
    "Executor",
    "Listener",
    "Registrar",
    "claim_flow_run",
    "executor_name",
    "serve_until_signalled",
]

logger = logging.getLogger("onboarding.executor")

FRESH = 0.25  # seconds from reading a due run to its accepted claim within which it is trusted
READY_EVERY = 10.0  # seconds between the executor's "I serve these deployments" polls
_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)

PARKED = "AwaitingChannel"
"""A parked run: ``Scheduled`` under this name, which no executor takes and Prefect never marks
``Late`` (its late-runs service only looks at runs named ``Scheduled``)."""
WOKEN = "Pending"
"""A woken run: plain ``Pending`` until an executor claims it. Prefect's
``PreventPendingTransitions`` rule refuses a proposal of this name from any ``Pending`` or
``Running`` state, so a late waker can never send a claimed or running run back; a different
name (say "Woken") would be accepted from ``Claimed``, which is a named ``Pending``."""
CLAIMED = "Claimed"
"""The ``Pending`` name an executor proposes to claim a run."""
HANDED_BACK = "HandedBack"
"""A run a stopping executor gave back: ``Scheduled`` now, for any executor to claim."""


Listener = Callable[[Callable[[], None]], Awaitable[None]]
"""Calls its argument whenever a run may have become due (``onboarding.orchestration.nudges``)."""

Registrar = Callable[[Collection[Flow[..., Any]]], Awaitable[Mapping[UUID, Flow[..., Any]]]]
"""Creates or updates, by name, the deployments of the flows given: ``{deployment id: flow}``."""


def executor_name() -> str:
    """``<host>:<pid>``, which claims carry in their state message."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def claim_flow_run(
    client: PrefectClient, flow_run: FlowRun, *, owner: str, read_at: float | None = None
) -> bool:
    """Propose ``Pending`` (never forced); True only if the run is ours to execute.

    ``flow_run`` is the run as read when it was found due, and ``read_at`` the event-loop time
    that read began. Prefect accepts ``Pending`` from a final state too, so a proposal that
    reaches the API late (a busy event loop, a slow network) could take a run another executor
    has meanwhile claimed and finished. A claim answered within :data:`FRESH` seconds of the read
    is trusted: no executor claims, runs and finishes an onboarding that fast. A later one is
    checked: if the run's ``run_count`` grew since the read (Prefect counts every ``Running``),
    the state the claim displaced is put back, unless it was due again (handed back, revived),
    and the claim is refused.
    """
    result = await client.set_flow_run_state(
        flow_run.id, Pending(name=CLAIMED, message=f"claimed by executor {owner}"), force=False
    )
    if result.status != SetStateStatus.ACCEPT:
        return False
    if read_at is not None and asyncio.get_running_loop().time() - read_at < FRESH:
        return True
    current = await client.read_flow_run(flow_run.id)
    if current.run_count <= flow_run.run_count:
        return True
    claimed = result.state.id if result.state is not None else None
    history = await client.read_flow_run_states(flow_run.id)
    displaced = [state for state in history if state.id != claimed][-1:]
    if not displaced or not displaced[0].is_final():
        return True  # it ran, and was then made due again: a fair claim
    logger.warning("flow run %s had already finished when claimed: left as it was", flow_run.id)
    ended = displaced[0]
    put_back = State(
        type=ended.type,
        name=ended.name,
        message=f"{ended.message or ended.name} (put back: a late claim by executor {owner})",
    )
    await client.set_flow_run_state(flow_run.id, put_back, force=True)
    return False


@dataclass
class Executor:
    """Claims and runs due flow runs of the deployments in ``flows``, at most ``limit`` at once."""

    flows: Mapping[UUID, Flow[..., Any]]  # deployment id -> the flow its runs execute
    limit: int
    poll: float = 1.0
    register: Registrar | None = None  # registers a deployment again if it was deleted
    listen: Listener | None = None  # nudges a poll when a run becomes due
    name: str = field(default_factory=executor_name)
    executed: list[UUID] = field(default_factory=list)  # every run this executor ran, in order
    _running: dict[UUID, asyncio.Task[Any]] = field(default_factory=dict, init=False)
    _room: asyncio.Event | None = field(default=None, init=False)
    _ready_at: float = field(default=0.0, init=False)

    @property
    def in_flight(self) -> list[UUID]:
        """The ids of the flow runs executing now."""
        return list(self._running)

    async def serve(self, stop: asyncio.Event, *, grace: float = 8.0) -> None:
        """Claim and run due flow runs until ``stop`` is set; then drain (see the module doc)."""
        self._room = asyncio.Event()
        logger.info(
            "executor %s serving %d deployment(s), at most %d run(s) at once",
            self.name,
            len(self.flows),
            self.limit,
        )
        listener = asyncio.create_task(self.listen(self.nudge)) if self.listen else None
        # One Prefect client for the executor and every run it starts (their tasks inherit this
        # context): Prefect's engine and the flow code use it instead of building a client, and
        # its TLS context, for each run.
        async with AsyncClientContext.get_or_create() as shared:
            client = shared.client
            while not stop.is_set():
                # Cleared before the poll: a nudge that arrives during it makes the next one
                # come at once.
                self._room.clear()
                try:
                    await self.poll_once(client)
                except Exception:  # the API may be restarting: log, wait, poll again
                    logger.exception("polling for due flow runs failed; retrying")
                waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._sleep())]
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
            if listener is not None:
                listener.cancel()
            await self._drain(grace)  # runs in flight still use the shared client

    def nudge(self) -> None:
        """Poll now rather than at the next ``poll`` tick (a run may have become due)."""
        if self._room is not None:
            self._room.set()

    async def _sleep(self) -> None:
        """Until the next poll: ``poll`` seconds, or sooner when nudged or a run frees room."""
        assert self._room is not None
        try:
            await asyncio.wait_for(self._room.wait(), timeout=self.poll)
        except TimeoutError:
            return

    async def upkeep(self, client: PrefectClient) -> None:
        """Every ``READY_EVERY`` seconds: :meth:`keep_deployments`, then :meth:`mark_ready`."""
        now = asyncio.get_running_loop().time()
        if self.flows and now >= self._ready_at:
            await self.keep_deployments(client)
            await self.mark_ready(client)
            self._ready_at = now + READY_EVERY

    async def keep_deployments(self, client: PrefectClient) -> None:
        """Register the served deployments again when any was deleted; serve their new ids.

        Deleting a deployment (the Prefect UI's delete button) deletes its ``Scheduled`` runs and
        leaves every other run pointing at an id that no longer exists; whoever re-creates it
        (``prefect deploy``, a restarted executor, this one) gets a new id. An executor that kept
        the old id would never claim a run again. So every ``READY_EVERY`` seconds it reads which
        of its deployment ids still exist (one request); for those gone it calls ``register``,
        which creates or updates each by name: one re-created meanwhile keeps its new id (and
        gets this executor's options), one nobody re-created is created again. This executor owns
        registration, as at start-up: stop the executors first to remove a deployment for good.
        ``flows`` then maps the current ids. The runs the deletion stranded are the watcher's:
        it gives their onboardings new runs
        (:func:`onboarding.orchestration.flow_runs.lost_flow_runs`).
        """
        if self.register is None:
            return
        existing = await client.read_deployments(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=list(self.flows)))
        )
        alive = {deployment.id for deployment in existing}
        gone = [flow for deployment_id, flow in self.flows.items() if deployment_id not in alive]
        if not gone:
            return
        logger.warning(
            "deployment(s) of %s no longer exist in the Prefect API: registering them again",
            ", ".join(flow.name for flow in gone),
        )
        renewed = await self.register(gone)
        kept = {i: flow for i, flow in self.flows.items() if i in alive}
        self.flows = {**kept, **renewed}
        logger.info(
            "executor %s now serves deployment(s) %s", self.name, ", ".join(map(str, self.flows))
        )

    async def mark_ready(self, client: PrefectClient) -> None:
        """Tell Prefect these deployments are served, so the UI shows them ``Ready``.

        Prefect records that when a runner or worker polls ``get_scheduled_flow_runs``; the
        executor finds its runs with its own filters (it must skip parked runs), so it makes that
        poll only for this, asking for runs due before 2000: none.
        """
        await client.get_scheduled_flow_runs_for_deployments(
            list(self.flows), scheduled_before=_LONG_AGO, limit=1
        )

    async def poll_once(self, client: PrefectClient) -> list[UUID]:
        """Claim as many due runs as there is room for and start them; the ids started."""
        await self.upkeep(client)
        room = self.limit - len(self._running)
        if room <= 0 or not self.flows:
            return []
        read_at = asyncio.get_running_loop().time()
        candidates = [
            flow_run
            for flow_run in await self.due_runs(client, room)
            if flow_run.id not in self._running and flow_run.deployment_id in self.flows
        ]
        # All at once, right after the read: the sooner a claim lands, the less it is checked.
        won = await asyncio.gather(
            *(
                claim_flow_run(client, flow_run, owner=self.name, read_at=read_at)
                for flow_run in candidates
            )
        )
        started: list[UUID] = []
        for flow_run, ours in zip(candidates, won, strict=True):
            if ours:  # otherwise another executor won it, or it moved on
                self._start(flow_run)
                started.append(flow_run.id)
        return started

    async def due_runs(self, client: PrefectClient, limit: int) -> list[FlowRun]:
        """Woken runs first, then ``Scheduled`` runs whose time has come (never parked ones)."""
        woken = await self._read_runs(
            client,
            FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.PENDING]),
                name=FlowRunFilterStateName(any_=[WOKEN]),
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=limit,
        )
        if len(woken) >= limit:
            return woken
        scheduled = await self._read_runs(
            client,
            FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]),
                name=FlowRunFilterStateName(not_any_=[PARKED]),
            ),
            next_scheduled_start_time=FlowRunFilterNextScheduledStartTime(
                before_=datetime.now(UTC)
            ),
            sort=FlowRunSort.NEXT_SCHEDULED_START_TIME_ASC,
            limit=limit - len(woken),
        )
        return [*woken, *scheduled]

    async def _read_runs(
        self,
        client: PrefectClient,
        state: FlowRunFilterState,
        *,
        sort: FlowRunSort,
        limit: int,
        **more: Any,
    ) -> list[FlowRun]:
        """Up to ``limit`` runs of these deployments in ``state`` (and the ``more`` filters).

        Only runs whose deployment still exists: until :meth:`keep_deployments` notices a
        deletion, the runs it stranded are left to the watcher, which replaces them.
        """
        served = list(self.flows)
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=served),
                state=state,
                **more,
            ),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=served)),
            sort=sort,
            limit=limit,
        )
        return list(runs)

    def _start(self, flow_run: FlowRun) -> None:
        flow = self.flows[flow_run.deployment_id]  # type: ignore[index]
        task = asyncio.create_task(self._execute(flow, flow_run), name=f"flow-run-{flow_run.id}")
        self._running[flow_run.id] = task
        self.executed.append(flow_run.id)
        task.add_done_callback(lambda _: self._finished(flow_run.id))

    def _finished(self, flow_run_id: UUID) -> None:
        self._running.pop(flow_run_id, None)
        if self._room is not None:
            self._room.set()

    async def _execute(self, flow: Flow[..., Any], flow_run: FlowRun) -> None:
        """Run one claimed flow run to its end; its outcome is reported by Prefect's engine."""
        try:
            if flow.isasync:
                await run_flow(flow, flow_run=flow_run, return_type="state")  # type: ignore[misc]
            else:
                await asyncio.to_thread(run_flow, flow, flow_run=flow_run, return_type="state")
        except Exception:  # the engine has reported the state; keep serving the others
            logger.exception("flow run %s ended with an error", flow_run.id)

    async def _drain(self, grace: float) -> None:
        """Give runs in flight ``grace`` seconds; hand back the ones still running, and exit.

        The hand-back holds the event loop until the process is gone: an engine of ours that
        went on (proposing ``Running`` or ``Completed``) after its run was handed back would race
        the executor that claims it next. A run handed back is abandoned mid-flight, so the
        process ends with ``os._exit`` rather than let interpreter shutdown cancel it into
        ``Crashed``.
        """
        if self._running:
            logger.info(
                "stopping: %d flow run(s) in flight, %.0f s to finish", len(self._running), grace
            )
            await asyncio.wait(list(self._running.values()), timeout=grace)
        left = list(self._running)
        if not left:
            return
        hand_back(left, owner=self.name)  # synchronous: nothing else runs on this loop now
        logger.warning("handed back %d flow run(s) still running: %s", len(left), left)
        logging.shutdown()
        os._exit(0)


def hand_back(flow_run_ids: Iterable[UUID], *, owner: str) -> None:
    """Make runs this executor is abandoning due again (forced: we hold them, nobody else does).

    Synchronous on purpose: see :meth:`Executor._drain`.
    """
    ids = list(flow_run_ids)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
        for flow_run in runs:
            if flow_run.state is not None and flow_run.state.is_final():
                continue
            client.set_flow_run_state(
                flow_run.id,
                Scheduled(
                    scheduled_time=datetime.now(UTC),
                    name=HANDED_BACK,
                    message=f"handed back by executor {owner}, which was stopping",
                ),
                force=True,
            )


def serve_until_signalled(executor: Executor, *, grace: float, setup: Any = None) -> int:
    """Run ``executor`` on an event loop in its own thread until SIGTERM or SIGINT; exit code.

    ``setup`` is an optional coroutine function run on that loop first (registering deployments).
    After a signal the executor drains; one that handed runs back ends the process there (see
    :meth:`Executor._drain`), and one that did not finish draining in time is ended here the same
    way.
    """
    stop_requested = threading.Event()
    failure: list[BaseException] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        if setup is not None:
            await setup(executor)
        # Prefect's engine also asks for a synchronous client once per run (to resolve its
        # result store): lend it one for them all, as for the asynchronous one in serve().
        with SyncClientContext.get_or_create():
            await executor.serve(stop, grace=grace)

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)
        finally:
            stop_requested.set()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop_requested.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    thread = threading.Thread(target=run, name="onboarding-executor", daemon=True)
    thread.start()
    while not stop_requested.wait(0.5):
        pass
    if thread.is_alive():
        loop.call_soon_threadsafe(stop.set)
        thread.join(grace + 30)
    if failure:
        logger.error("the executor failed", exc_info=failure[0])
        return 1
    abandoned = bool(executor.in_flight) or thread.is_alive()
    if abandoned:
        os._exit(0)
    return 0
