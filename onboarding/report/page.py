"""The report as one self-contained HTML page: inline CSS, inline SVG charts, no external URL.

The page works offline (no script, font, stylesheet or image is fetched) so it can be mailed or
opened from a file share. Every piece of text from the history is HTML-escaped
(:func:`onboarding.escaping.html_text`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from onboarding.escaping import html_text as escape
from onboarding.report.charts import alerts_chart, funnel_chart, ready_chart
from onboarding.report.markdown import fmt_seconds, funnel_rows
from onboarding.report.model import Report

__all__ = ["render_html"]

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 960px; color: #1d2330; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2rem; font-size: 1.2rem; }
.meta { color: #5b6474; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border-bottom: 1px solid #e3e6eb; padding: .3rem .6rem; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; }
.overdue { color: #b3261e; font-weight: 600; }
figure { margin: 0; } figure svg { width: 100%; height: auto; }
.empty { color: #5b6474; font-style: italic; }
"""


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: set[int]) -> str:
    def cell(tag: str, index: int, value: object) -> str:
        cls = ' class="n"' if index in numeric else ""
        return f"<{tag}{cls}>{escape(str(value))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _latency_rows(report: Report) -> list[list[object]]:
    days = [*report.time_to_ready, report.time_to_ready_overall]
    labels = [f"{d.day:%Y-%m-%d}" for d in report.time_to_ready] + ["whole window"]
    return [
        [label, d.count, fmt_seconds(d.p50), fmt_seconds(d.p90), fmt_seconds(d.p99)]
        for label, d in zip(labels, days, strict=True)
    ]


def render_html(report: Report) -> str:
    """The whole report as one HTML document (a string)."""
    funnel = report.funnel
    alerts = report.alerts
    failures = (
        _table(
            ["state", "reason", "runs"],
            [[f.state, f.reason, f.count] for f in funnel.failures],
            {2},
        )
        if funnel.failures
        else '<p class="empty">No failed onboarding in the window.</p>'
    )
    waiting = (
        _table(
            ["channel", "client", "state", "availability", "waited", "overdue"],
            [
                [
                    w.channel_id,
                    w.client_name or w.client_id,
                    w.state,
                    w.availability_status or "—",
                    fmt_seconds(w.waited_seconds),
                    "overdue" if w.overdue else "",
                ]
                for w in report.waiting
            ],
            {4},
        )
        if report.waiting
        else '<p class="empty">No channel is waiting.</p>'
    )
    alert_table = _table(
        ["kind", "raised", "resolved", "open"],
        [[k.kind, k.raised, k.resolved, k.open] for k in alerts.by_kind],
        {1, 2, 3},
    )
    window = f"{report.since:%Y-%m-%d %H:%M} → {report.until:%Y-%m-%d %H:%M} UTC"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Onboarding report {escape(window)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Onboarding report</h1>",
        f'<p class="meta">{escape(window)} · generated '
        f"{report.generated_at:%Y-%m-%d %H:%M} UTC</p>",
        "<h2>Funnel</h2>",
        f'<figure id="chart-funnel">{funnel_chart(report)}</figure>',
        _table(["stage", "runs", "of signed up"], funnel_rows(report), {1, 2}),
        "<h3>Failures by reason</h3>",
        failures,
        "<h2>Time to ready</h2>",
        f'<figure id="chart-ready">{ready_chart(report)}</figure>',
        _table(["day (UTC)", "ready", "p50", "p90", "p99"], _latency_rows(report), {1, 2, 3, 4}),
        f"<h2>Slowest channels still waiting ({report.waiting_total} waiting)</h2>",
        waiting,
        f"<h2>Alerts: {alerts.raised} raised, {alerts.resolved} resolved, "
        f"{alerts.open_now} open</h2>",
        f'<figure id="chart-alerts">{alerts_chart(report)}</figure>' if alerts.by_kind else "",
        alert_table if alerts.by_kind else '<p class="empty">No alert in the window.</p>',
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
