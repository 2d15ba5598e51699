"""Serve every deployment from one process: the embedded default (`onboarding up` runs this).

    python -m deployments.serve

Each flow run executes in a subprocess of this one. Waiting onboardings are parked runs and hold
no process; ``ONBOARDING_MAX_RUNNING`` caps the ones executing at once.
"""

from __future__ import annotations

from typing import Any

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

from deployments.warm_start import install_warm_start
from flows.onboard import onboard_channel
from flows.report import daily_report
from flows.watch import watch_channels
from onboarding.settings import Settings, load_settings

__all__ = ["build_deployments", "main"]


def build_deployments(settings: Settings) -> list[Any]:
    """The deployments, configured from ``settings`` (the same names as prefect.yaml)."""
    return [
        onboard_channel.to_deployment(
            name="onboard-channel",
            tags=["onboarding"],
            description="Onboard one channel: wait for ready, notify the partner, or alert.",
        ),
        watch_channels.to_deployment(
            name="watch-channels",
            tags=["onboarding", "watcher"],
            description="Sweep the partner's channels and reconcile the onboardings.",
            interval=settings.sweep_interval,
            concurrency_limit=ConcurrencyLimitConfig(
                limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
            ),
        ),
        daily_report.to_deployment(
            name="report",
            tags=["onboarding", "report"],
            description="Daily onboarding report (funnel, time to ready, waiting, alerts).",
            cron="0 6 * * *",
            parameters={"window_hours": 24},
        ),
    ]


def main() -> None:
    """Register the deployments with the Prefect API and run their flow runs until stopped.

    The cap on executing runs is this process's ``limit``, not a deployment concurrency limit:
    measured on the SQLite server, deployment slots leaked under load (runs stuck in
    ``AwaitingConcurrencySlot``/``Submitting`` while the server logged "database is locked"),
    while the runner's own limit just leaves the extra runs ``Scheduled`` until a slot frees.
    With ``ONBOARDING_WARM_START`` (the default) runs are forked from a warm fork server.
    """
    settings = load_settings()
    if settings.warm_start:
        install_warm_start()
    serve(*build_deployments(settings), limit=settings.max_running + 1)


if __name__ == "__main__":
    main()
