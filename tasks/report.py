"""What people read in the Prefect UI: the daily report (tasks) and each run's timeline."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from onboarding.history import Claim, load_timeline
from onboarding.hub import Channel
from onboarding.report import Report, build_report, render_markdown
from onboarding.runtime import history_engine
from onboarding.store import session_scope
from onboarding.timeline import render_timeline

__all__ = [
    "REPORT_ARTIFACT_KEY",
    "artifact_key",
    "build_summary",
    "publish_report",
    "publish_timeline",
]

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


def artifact_key(prefix: str, channel_id: str) -> str:
    """An artifact key Prefect accepts (lowercase letters, digits, dashes) for a channel."""
    slug = re.sub(r"[^a-z0-9]+", "-", channel_id.lower()).strip("-")
    return f"{prefix}-{slug}"[:200]


async def publish_timeline(
    claim: Claim, channel: Channel | None, *, outcome: str, reason: str | None = None
) -> None:
    """Publish the channel's timeline and the run's outcome as a markdown artifact.

    A plain call, not a task run: one artifact write, nothing Prefect's retries would help.
    """
    markdown = render_timeline(
        channel_id=claim.channel_id,
        client_name=channel.client_name if channel else None,
        phone_number=channel.phone_number if channel else None,
        rows=load_timeline(claim.channel_id),
        outcome=outcome,
        reason=reason,
        now=datetime.now(UTC),
    )
    await create_markdown_artifact(
        key=artifact_key("timeline", claim.channel_id),
        markdown=markdown,
        description=f"Onboarding timeline of channel {claim.channel_id}: {outcome}",
    )
