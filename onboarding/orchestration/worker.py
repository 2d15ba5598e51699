"""The ``onboarding`` worker type: a Prefect worker that runs many flow runs in its own process.

    prefect worker start --pool onboarding --type onboarding [--limit N]

An ordinary Prefect worker (:class:`prefect.workers.base.BaseWorker`, registered through this
package's ``prefect.collections`` entry point): it heartbeats, so the pool shows ``Ready``; it
asks for due runs with Prefect's own query and claims each the standard way (``Pending``, which
Prefect accepts once); ``--limit`` bounds how many execute at once. Only the execution differs
from the process worker: :meth:`OnboardingWorker.run` executes the run with
:func:`prefect.flow_engine.run_flow` (what Prefect's engine entry point calls) on the worker's
:class:`~onboarding.orchestration.runs_loop.RunsLoop`, with no process per run.

Cancelling: Prefect calls :meth:`kill_infrastructure` for a run not yet started; for a started
one the worker looks for ``Cancelling`` among its runs itself. Either way the run is asked to
stop through :mod:`onboarding.orchestration.cancel` and ends ``Cancelled``. Stopping (SIGTERM):
runs in flight get :data:`GRACE` seconds; the rest are made due again for any worker, carrying
on from the steps their history recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import socket
from typing import Any
from uuid import UUID

import anyio.abc
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun, StateType, WorkPool
from prefect.client.schemas.responses import DeploymentResponse
from prefect.exceptions import InfrastructureNotAvailable
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorker, BaseWorkerResult

from onboarding.orchestration import cancel
from onboarding.orchestration.flow_runs import make_due_again, read_by_ids
from onboarding.orchestration.runs_loop import RunsLoop

__all__ = ["BASE_JOB_TEMPLATE", "GRACE", "TYPE", "OnboardingWorker"]

TYPE = "onboarding"
BASE_JOB_TEMPLATE: dict[str, Any] = {
    # Prefect wants a non-empty configuration; it is never resolved (see below).
    "job_configuration": {"execution": "in the worker process"},
    "variables": {
        "type": "object",
        "description": "Runs execute inside the worker process: nothing to configure.",
        "properties": {},
    },
}
GRACE = 8.0  # seconds a stopping worker lets runs in flight finish before handing them back
CANCEL_POLL = 2.0  # seconds between looks for Cancelling among the runs this worker executes


class OnboardingJobConfiguration(BaseJobConfiguration):
    """Nothing to configure: runs execute inside the worker."""

    @classmethod
    async def resolve_for_flow_run(
        cls,
        flow_run: FlowRun,
        *,
        client: PrefectClient,
        work_pool: WorkPool,
        worker_name: str,
        worker_id: UUID | None = None,
        deployment: DeploymentResponse | None = None,
    ) -> OnboardingJobConfiguration:
        """No infrastructure to template: spare the two reads (deployment, flow) per run."""
        return cls()


class OnboardingWorkerResult(BaseWorkerResult):
    """How one run ended inside the worker (``status_code`` 0: its engine reported it)."""


class OnboardingWorker(
    BaseWorker[OnboardingJobConfiguration, BaseVariables, OnboardingWorkerResult]
):
    """Claims due flow runs of its pool and executes them in this process, many at once."""

    type = TYPE
    job_configuration = OnboardingJobConfiguration
    _description = (
        "Runs flow runs inside the worker process, many at once on one event loop: "
        "no process per run. For the d360-onboarding deployments."
    )
    _documentation_url = "https://github.com/d360-onboarding/d360-onboarding"

    @classmethod
    def get_default_base_job_template(cls) -> dict[str, Any]:
        """The pool's template: nothing to configure, so no variables for the server to check.

        Prefect's server validates a run's job variables against the pool's variables schema
        each time it creates a run of the pool's deployments, the schema itself against JSON
        Schema's metaschema first: with Prefect's base variables that was most of the server's
        time creating a backlog's runs (BENCHMARKS.md, "Where parking a backlog's time goes").
        """
        return copy.deepcopy(BASE_JOB_TEMPLATE)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._runs: RunsLoop | None = None
        self._flows: dict[UUID, Flow[..., Any]] = {}  # by deployment id
        self._in_flight: dict[UUID, asyncio.Future[Any]] = {}
        self._cancel_watch: asyncio.Task[None] | None = None

    async def setup(self) -> None:
        """Start the runs loop and the cancel watch, then Prefect's own setup."""
        self._runs = RunsLoop.start()
        await super().setup()
        self._cancel_watch = asyncio.create_task(self._watch_cancels())

    async def teardown(self, *exc_info: Any) -> None:
        """Let runs in flight finish for :data:`GRACE` s; hand back the rest; then Prefect's."""
        if self._in_flight:
            self._logger.info("stopping: %d run(s) in flight", len(self._in_flight))
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait(list(self._in_flight.values()), timeout=GRACE)
        if self._cancel_watch is not None:
            self._cancel_watch.cancel()
        left = [run_id for run_id, done in self._in_flight.items() if not done.done()]
        if self._runs is not None:
            self._runs.stop(abandon=bool(left))  # none of their code runs here from now on
        if left:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(self._hand_back(left))
        await super().teardown(*exc_info)

    async def run(
        self,
        flow_run: FlowRun,
        configuration: OnboardingJobConfiguration,
        task_status: anyio.abc.TaskStatus[str] | None = None,
    ) -> OnboardingWorkerResult:
        """Execute ``flow_run`` here; returns once its engine has reported its final state."""
        identifier = f"{socket.gethostname()}:{os.getpid()}:{flow_run.id}"
        flow = await self._flow_of(flow_run)
        assert self._runs is not None
        done = asyncio.wrap_future(self._runs.submit(flow, flow_run))
        self._in_flight[flow_run.id] = done
        if task_status is not None:
            task_status.started(identifier)
        try:
            # Shielded: a worker told to stop must not cancel the run with it (see teardown).
            await asyncio.shield(done)
        except Exception:
            self._logger.exception("flow run %s ended with an error", flow_run.id)
        finally:
            if done.done():
                self._in_flight.pop(flow_run.id, None)
                cancel.forget(flow_run.id)
        return OnboardingWorkerResult(identifier=identifier, status_code=0)

    async def kill_infrastructure(
        self,
        infrastructure_pid: str,
        configuration: OnboardingJobConfiguration,
        grace_seconds: int = 30,
    ) -> None:
        """Prefect's cancel hook (a run claimed but not started): ask the run to stop."""
        host, pid, flow_run_id = [*infrastructure_pid.split(":"), "", "", ""][:3]
        if host != socket.gethostname() or pid != str(os.getpid()):
            raise InfrastructureNotAvailable(f"{infrastructure_pid} runs in another worker")
        cancel.request(UUID(flow_run_id))

    async def _give_worker_labels_to_flow_run(self, flow_run_id: UUID) -> None:
        """Write no worker labels on the run: its events already name this worker and pool.

        Prefect's worker awaits a labels update before it starts each run. On a SQLite server
        that update reads, then writes in a deferred transaction, and under concurrent commits
        fails ("database is locked", 503) and is retried after 2 to 32 s: runs of 0.2 s held
        their slot for up to a minute. Written beside the run instead, 1,565 of 1,690 attempts
        still failed at N = 300, a third of the run's Prefect API writes, and 6 runs in 10 got
        no labels (BENCHMARKS.md, "Prefect API requests per onboarding"). The run's
        ``prefect.worker.submitted-flow-run`` and ``executed-flow-run`` events (its Events tab)
        name the worker and the work pool; the run carries the pool's name itself. No public
        switch exists, so this one method is overridden; were Prefect to rename it, its own
        labelling comes back, correct and slower.
        """

    async def _flow_of(self, flow_run: FlowRun) -> Flow[..., Any]:
        """The flow of ``flow_run``'s deployment, imported once per deployment."""
        deployment_id = flow_run.deployment_id
        if deployment_id is None:
            raise ValueError(f"flow run {flow_run.id} has no deployment to load its flow from")
        if deployment_id not in self._flows:
            deployment = await self.client.read_deployment(deployment_id)
            self._flows[deployment_id] = await asyncio.to_thread(
                load_flow_from_entrypoint, deployment.entrypoint or "", False
            )
        return self._flows[deployment_id]

    async def _watch_cancels(self) -> None:
        """Every :data:`CANCEL_POLL` s, ask the runs executing here that were cancelled to stop."""
        while True:
            await asyncio.sleep(CANCEL_POLL)
            ids = list(self._in_flight)
            if not ids or self._client is None:
                continue
            try:
                cancelling = await read_by_ids(self.client, ids, [StateType.CANCELLING])
            except Exception as error:  # the API may be restarting: look again next time
                self._logger.debug("could not look for cancelled runs: %s", error)
                continue
            for flow_run in cancelling:
                cancel.request(flow_run.id)

    async def _hand_back(self, flow_run_ids: list[UUID]) -> None:
        """Make runs this worker abandons due again, for any worker (none of it runs here now)."""
        runs = await read_by_ids(self.client, flow_run_ids)
        unfinished = [run for run in runs if run.state is not None and not run.state.is_final()]
        message = f"handed back by worker {self.name}, which was stopping"
        await make_due_again(self.client, unfinished, message)
        self._logger.warning("handed back %d run(s): %s", len(unfinished), flow_run_ids)
