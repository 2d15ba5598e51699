"""The report in the terminal (rich): funnel, time to ready per day, slowest waiting, alerts."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from onboarding.escaping import plain
from onboarding.report.markdown import fmt_seconds, funnel_rows
from onboarding.report.model import Report

__all__ = ["print_report"]


def print_report(report: Report, console: Console) -> None:
    """Print the report as four rich tables."""
    console.print(
        f"[bold]Onboarding report[/] {report.since:%Y-%m-%d %H:%M} → "
        f"{report.until:%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )
    console.print(_funnel(report))
    console.print(_latency(report))
    console.print(_waiting(report))
    console.print(_alerts(report))


def _funnel(report: Report) -> Table:
    table = Table(title="Funnel")
    table.add_column("stage")
    table.add_column("runs", justify="right")
    table.add_column("of signed up", justify="right")
    for name, count, share in funnel_rows(report):
        table.add_row(name, str(count), share)
    for failure in report.funnel.failures:
        table.add_row(
            plain(f"  {failure.state}: {failure.reason}"), str(failure.count), "", style="red"
        )
    return table


def _latency(report: Report) -> Table:
    table = Table(title="Time to ready (UTC days)")
    for column in ("day", "ready", "p50", "p90", "p99"):
        table.add_column(column, justify="left" if column == "day" else "right")
    overall = report.time_to_ready_overall
    rows = [(f"{d.day:%Y-%m-%d}", d) for d in report.time_to_ready] + [("window", overall)]
    for label, day in rows:
        cells = (fmt_seconds(day.p50), fmt_seconds(day.p90), fmt_seconds(day.p99))
        table.add_row(label, str(day.count), *cells, style="bold" if label == "window" else None)
    return table


def _waiting(report: Report) -> Table:
    table = Table(title=f"Slowest channels still waiting ({report.waiting_total} waiting)")
    for column in ("channel", "client", "state", "availability", "waited"):
        table.add_column(column, justify="right" if column == "waited" else "left")
    for w in report.waiting:
        waited = fmt_seconds(w.waited_seconds) + (" [red](overdue)[/]" if w.overdue else "")
        table.add_row(
            plain(w.channel_id),
            plain(w.client_name or w.client_id),
            plain(w.state),
            plain(w.availability_status or "—"),
            waited,
        )
    return table


def _alerts(report: Report) -> Table:
    alerts = report.alerts
    table = Table(
        title=f"Alerts: {alerts.raised} raised, {alerts.resolved} resolved, {alerts.open_now} open"
    )
    for column in ("kind", "raised", "resolved", "open"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind in alerts.by_kind:
        table.add_row(plain(kind.kind), str(kind.raised), str(kind.resolved), str(kind.open))
    return table
