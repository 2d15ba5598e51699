"""The report's renderings: an offline HTML page with charts, markdown, rich tables, JSON."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console
from sqlmodel import Session

from onboarding.report import Report, build_report, print_report, render_html, render_markdown
from tests.report.seed import seed_history

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
EXTERNAL = re.compile(r"""(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


@pytest.fixture
def report(session: Session) -> Report:
    """The report over the seeded history."""
    seed_history(session, NOW)
    return build_report(session, window=timedelta(days=7), now=NOW)


def test_html_page_loads_nothing_from_the_network(report: Report) -> None:
    """The page has no script, no link and no src/href pointing at another host."""
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert not EXTERNAL.search(page)
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert "@import" not in page


def test_html_page_holds_the_three_charts_inline(report: Report) -> None:
    """Funnel, time-to-ready and alert charts are inline SVGs with the seeded series."""
    page = render_html(report)
    for chart in ("chart-funnel", "chart-ready", "chart-alerts"):
        figure = page.split(f'<figure id="{chart}">', 1)[1].split("</figure>", 1)[0]
        assert figure.lstrip().startswith("<svg")
    assert page.count("<svg") == 3
    assert "Time to ready (hours)" in page
    assert ">p90<" in page
    assert ">stuck<" in page


def test_html_page_escapes_history_text(session: Session) -> None:
    """A failure reason with markup is shown as text, not injected into the page."""
    from onboarding.store import settle_run, start_or_get_run

    run, _ = start_or_get_run(
        session,
        partner_id="p1",
        channel_id="ch-x",
        client_id="c",
        trigger="manual",
        deadline_seconds=60,
        now=NOW - timedelta(hours=1),
    )
    assert run.id is not None
    reason = '<img src="https://evil.example/x.png">'
    settle_run(session, run_id=run.id, state="failed", availability_status="error",
               failure_reason=reason, now=NOW)  # fmt: skip
    page = render_html(build_report(session, window=timedelta(days=1), now=NOW))
    assert "<img" not in page
    assert "&lt;img src=&quot;https://evil.example/x.png&quot;&gt;" in page


def test_markdown_has_every_section(report: Report) -> None:
    """The artifact markdown has the funnel, failures, per-day table, waiting and alerts."""
    text = render_markdown(report)
    for heading in ("## Funnel", "### Failures by reason", "## Time to ready", "## Alerts"):
        assert heading in text
    assert "| completed | 3 | 33% |" in text
    assert "| ch-g | Client ch-g | waiting |" in text
    assert "+49" not in text


def test_rich_view_prints_four_tables(report: Report) -> None:
    """The terminal view shows the funnel, per-day latency, waiting channels and alerts."""
    console = Console(record=True, width=140)
    print_report(report, console)
    text = console.export_text()
    for title in ("Funnel", "Time to ready", "Slowest channels still waiting", "Alerts: 2 raised"):
        assert title in text
    assert "ch-g" in text
    assert "overdue" in text


def test_json_round_trips(report: Report) -> None:
    """The JSON form parses back into the same report."""
    data = json.loads(report.model_dump_json())
    assert data["funnel"]["completed"] == 3
    assert Report.model_validate(data) == report
