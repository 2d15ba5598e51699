"""The daily-report flow publishes the summary as the onboarding-report markdown artifact."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from onboarding.store import session_scope
from tests.report.seed import seed_history


@pytest.mark.parametrize("test_database", ["sqlite"], indirect=True)
async def test_daily_report_publishes_an_artifact(
    engine: Engine, db_url: str, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of daily-report leaves the onboarding-report artifact with the funnel in it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.report import daily_report

    monkeypatch.setenv("ONBOARDING_DATABASE_URL", db_url)
    with session_scope(engine) as session:
        seed_history(session, datetime.now(UTC))
    report = await daily_report(window_hours=24 * 7)
    assert report.funnel.completed == 3
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["onboarding-report"]))
        )
    assert artifacts, "no onboarding-report artifact"
    latest = max(artifacts, key=lambda artifact: artifact.created)
    assert "| completed | 3 |" in str(latest.data)
