"""Serve every deployment from one process: the embedded default (`onboarding up` runs this).

    python -m deployments.serve

Each flow run executes in a subprocess of this one. Waiting onboardings are parked runs and hold
no process; ``ONBOARDING_MAX_RUNNING`` caps the ones executing at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.exceptions import TerminationSignal
from prefect.runner import Runner

from deployments.warm_start import install_warm_start
from flows.onboard import onboard_channel
from flows.report import daily_report
from flows.watch import watch_channels
from onboarding.settings import Settings, load_settings

__all__ = ["build_runner", "main", "served_flows"]


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
                "concurrency_limit": ConcurrencyLimitConfig(
                    limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
                ),
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


def build_runner(settings: Settings) -> Runner:
    """A runner with every deployment registered, holding the flow objects themselves.

    ``add_flow`` (unlike ``serve(*deployments)``) keeps each flow in memory, so a run starts by
    calling the flow in a subprocess instead of ``python -m prefect.engine`` loading it from its
    entrypoint; with ``ONBOARDING_WARM_START`` that subprocess is forked from a warm fork server.

    The cap on executing runs is the runner's ``limit``, not a deployment concurrency limit:
    measured on the SQLite server, deployment slots leaked under load (runs stuck in
    ``AwaitingConcurrencySlot``/``Submitting`` while the server logged "database is locked"),
    while the runner's own limit just leaves the extra runs ``Scheduled`` until a slot frees.
    """
    if settings.warm_start:
        install_warm_start()
    runner = Runner(name="onboarding", limit=settings.max_running + 1)
    for flow, options in served_flows(settings):
        runner.add_flow(flow, **options)
    return runner


def main() -> None:
    """Register the deployments with the Prefect API and run their flow runs until stopped."""
    runner = build_runner(load_settings())
    with contextlib.suppress(KeyboardInterrupt, TerminationSignal):
        asyncio.run(runner.start())


if __name__ == "__main__":
    main()
