"""The executor for every deployment (what `onboarding up` runs): claims due runs, runs them here.

    python -m deployments.serve [--grace SECONDS]

It registers the deployments (the names in prefect.yaml) with the Prefect API, then runs their
flow runs in this process as asyncio tasks, at most ``ONBOARDING_MAX_RUNNING`` onboardings at once
(plus one slot for the sweep or the report). Start it on as many machines as needed against one
Prefect server: each claims runs through Prefect's orchestration, so every run executes once.
Waiting onboardings are parked runs and hold nothing. It starts a sweep as soon as it serves.
A deployment deleted while it serves (the Prefect UI) is registered again within 10 s, and the
executor serves the new one (``Executor.keep_deployments``). SIGTERM or Ctrl-C stops it
gracefully.
"""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Collection
from typing import Any
from uuid import UUID

from prefect import Flow

from flows.onboard import onboard_channel
from flows.report import daily_report
from flows.watch import watch_channels
from onboarding.orchestration.executor import Executor, serve_until_signalled
from onboarding.orchestration.flow_runs import one_at_a_time, sweep_now
from onboarding.orchestration.nudges import nudge_on_due_runs
from onboarding.settings import Settings, load_settings

__all__ = ["GRACE_SECONDS", "build_executor", "main", "register", "served_flows"]

GRACE_SECONDS = 8.0
"""How long a stopping executor lets runs in flight finish (``onboarding up`` waits 10 s)."""


def served_flows(settings: Settings) -> list[tuple[Flow[..., Any], dict[str, Any]]]:
    """Each flow with its deployment's options, from ``settings`` (the names in prefect.yaml)."""
    return [
        (
            onboard_channel,
            {
                "name": "onboard-channel",
                "tags": ["onboarding"],
                "description": "Onboard one channel: wait for ready, notify the partner, or alert.",
            },
        ),
        (
            watch_channels,
            {
                "name": "watch-channels",
                "tags": ["onboarding", "watcher"],
                "description": "Sweep the partner's channels and reconcile the onboardings.",
                "interval": settings.sweep_interval,
                "concurrency_limit": one_at_a_time(),
            },
        ),
        (
            daily_report,
            {
                "name": "report",
                "tags": ["onboarding", "report"],
                "description": "Daily onboarding report (funnel, time to ready, waiting, alerts).",
                "cron": "0 6 * * *",
                "parameters": {"window_hours": 24},
            },
        ),
    ]


async def register(
    settings: Settings, flows: Collection[Flow[..., Any]] | None = None
) -> dict[UUID, Flow[..., Any]]:
    """Create or update the deployments (of ``flows``, else all): ``{deployment id: flow}``."""
    served: dict[UUID, Flow[..., Any]] = {}
    for flow, options in served_flows(settings):
        if flows is None or flow in flows:
            deployment = await flow.ato_deployment(**options)
            served[await deployment.aapply()] = flow
    return served


def build_executor(settings: Settings) -> Executor:
    """An executor with no deployments yet (:func:`register` fills them in once it runs, and
    again whenever one of them was deleted)."""
    return Executor(
        flows={},
        limit=settings.max_running + 1,
        poll=settings.executor_poll,
        register=functools.partial(register, settings),
        listen=nudge_on_due_runs,
    )


def main(argv: list[str] | None = None) -> None:
    """Register the deployments and run their flow runs until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__)
    parser.add_argument(
        "--grace",
        type=float,
        default=GRACE_SECONDS,
        help="seconds runs in flight may take to finish when stopping (then handed back)",
    )
    args = parser.parse_args(argv)
    # Prefect configured logging when it was imported; the executor's own lines go to stderr.
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s")
    )
    executor_log = logging.getLogger("onboarding.executor")
    executor_log.addHandler(handler)
    executor_log.setLevel(logging.INFO)
    settings = load_settings()

    async def setup(executor: Executor) -> None:
        executor.flows = await register(settings)
        await sweep_now()  # reconcile at once, not one sweep interval after a (re)start

    raise SystemExit(serve_until_signalled(build_executor(settings), grace=args.grace, setup=setup))


if __name__ == "__main__":
    main()
