"""Tasks of the daily report: build the summary from the history, publish it as an artifact."""

from __future__ import annotations

from datetime import timedelta

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from onboarding.report import Report, build_report, render_markdown
from onboarding.store import session_scope
from tasks.resources import history_engine

__all__ = ["REPORT_ARTIFACT_KEY", "build_summary", "publish_report"]

REPORT_ARTIFACT_KEY = "onboarding-report"


@task(name="build-report", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10)
def build_summary(window_hours: float) -> Report:
    """Read the history and summarise the last ``window_hours`` hours."""
    with session_scope(history_engine()) as session:
        return build_report(session, window=timedelta(hours=window_hours))


@task(name="publish-report", cache_policy=NO_CACHE)
async def publish_report(report: Report) -> None:
    """Publish the summary as the ``onboarding-report`` markdown artifact."""
    funnel = report.funnel
    await create_markdown_artifact(
        key=REPORT_ARTIFACT_KEY,
        markdown=render_markdown(report),
        description=(
            f"Onboarding report {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} "
            f"UTC: {funnel.completed} completed, {funnel.failed} failed, "
            f"{report.waiting_total} waiting"
        ),
    )
