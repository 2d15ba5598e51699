"""The onboarding report: funnel, time to ready, slowest waiting channels, alerts.

One summary model (:class:`Report`), built by read-only queries over the history
(:func:`build_report`), rendered four ways: rich tables (:func:`print_report`), JSON
(``Report.model_dump_json``), a self-contained HTML page with SVG charts (:func:`render_html`)
and markdown for the Prefect artifact (:func:`render_markdown`)::

    with session_scope(engine) as session:
        report = build_report(session, window=parse_since("7d"))
    Path("report.html").write_text(render_html(report))

Importing this package imports neither pygal nor rich; the renderers do, when called.
"""

from __future__ import annotations

from onboarding.report.markdown import render_markdown
from onboarding.report.model import (
    AlertKindCount,
    Alerts,
    DayLatency,
    FailureCount,
    Funnel,
    Report,
    Waiting,
)
from onboarding.report.queries import build_report, clean_reason
from onboarding.report.stats import percentile
from onboarding.report.window import parse_since

__all__ = [
    "AlertKindCount",
    "Alerts",
    "DayLatency",
    "FailureCount",
    "Funnel",
    "Report",
    "Waiting",
    "build_report",
    "clean_reason",
    "parse_since",
    "percentile",
    "print_report",
    "render_html",
    "render_markdown",
]


def __getattr__(name: str) -> object:
    """Load the rich and HTML renderers on first use (they import rich and pygal)."""
    if name == "print_report":
        from onboarding.report.terminal import print_report

        return print_report
    if name == "render_html":
        from onboarding.report.page import render_html

        return render_html
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
