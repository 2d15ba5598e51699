"""``daily-report``: summarise the onboarding history and publish it in the Prefect UI."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow

from onboarding.report import Report
from tasks.report import build_summary, publish_report

__all__ = ["daily_report"]


def _report_name() -> str:
    return f"report-{datetime.now(UTC):%Y%m%d-%H%M}"


@flow(name="daily-report", flow_run_name=_report_name)
async def daily_report(window_hours: float = 24.0) -> Report:
    """Summarise the last ``window_hours`` of onboardings as the ``onboarding-report`` artifact."""
    report = build_summary(window_hours)
    await publish_report(report)
    return report
