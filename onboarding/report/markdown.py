"""The report as markdown: the Prefect artifact of the daily ``report`` deployment.

Every value read from the history (ids, client names, reasons, kinds) is escaped for Markdown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

from onboarding.escaping import md_cell
from onboarding.report.model import DayLatency, Report
from onboarding.timeline import format_duration

__all__ = ["fmt_seconds", "funnel_rows", "render_markdown"]


def fmt_seconds(value: float | None) -> str:
    """Seconds as a short duration (``3m 05s``), or ``—`` when there is no value."""
    return "—" if value is None else format_duration(timedelta(seconds=value))


def funnel_rows(report: Report) -> list[tuple[str, int, str]]:
    """``(stage, count, share of signed up)`` for each funnel stage, in order."""
    funnel = report.funnel
    base = funnel.signed_up
    stages = [
        ("signed up", funnel.signed_up),
        ("setting_up", funnel.setting_up),
        ("ready", funnel.ready),
        ("completed", funnel.completed),
        ("failed", funnel.failed),
        ("in progress", funnel.in_progress),
    ]
    return [(name, count, f"{count / base:.0%}" if base else "—") for name, count in stages]


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _table(align: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table; ``align`` has an ``l`` or ``r`` (right, for numbers) per column."""
    rule = "|" + "|".join("---:" if side == "r" else "---" for side in align) + "|"
    return [_row(header), rule, *(_row(row) for row in rows)]


def _latency(label: str, day: DayLatency) -> tuple[str, ...]:
    return (label, str(day.count), fmt_seconds(day.p50), fmt_seconds(day.p90), fmt_seconds(day.p99))


def render_markdown(report: Report) -> str:
    """The whole report as one markdown document (no phone numbers, no secrets)."""
    lines = [
        "# Onboarding report",
        "",
        f"Window: {report.since:%Y-%m-%d %H:%M} → {report.until:%Y-%m-%d %H:%M} UTC",
        "",
        "## Funnel",
        "",
        *_table("lrr", ("stage", "runs", "of signed up"), funnel_rows(report)),
        "",
    ]
    if report.funnel.failures:
        failures = [(md_cell(f.state), md_cell(f.reason), f.count) for f in report.funnel.failures]
        lines += ["### Failures by reason", ""]
        lines += _table("llr", ("state", "reason", "runs"), failures)
        lines.append("")
    lines += [
        "## Time to ready (UTC days)",
        "",
        *_table(
            "lrrrr",
            ("day", "ready", "p50", "p90", "p99"),
            [
                *(_latency(f"{day.day:%Y-%m-%d}", day) for day in report.time_to_ready),
                _latency("**window**", report.time_to_ready_overall),
            ],
        ),
        "",
        f"## Slowest channels still waiting ({report.waiting_total} waiting)",
        "",
    ]
    if report.waiting:
        waiting = [
            (
                md_cell(w.channel_id),
                md_cell(w.client_name or w.client_id),
                md_cell(w.state),
                fmt_seconds(w.waited_seconds),
                "yes" if w.overdue else "",
            )
            for w in report.waiting
        ]
        lines += _table("lllrl", ("channel", "client", "state", "waited", "overdue"), waiting)
    else:
        lines.append("No channel is waiting.")
    alerts = report.alerts
    lines += [
        "",
        f"## Alerts: {alerts.raised} raised, {alerts.resolved} resolved, {alerts.open_now} open",
        "",
    ]
    if alerts.by_kind:
        kinds = [(md_cell(k.kind), k.raised, k.resolved, k.open) for k in alerts.by_kind]
        lines += _table("lrrr", ("kind", "raised", "resolved", "open"), kinds)
    return "\n".join(lines) + "\n"
