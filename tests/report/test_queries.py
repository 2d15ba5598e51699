"""The report's figures over a known history, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from onboarding.report import build_report, clean_reason, parse_since, percentile
from tests.report.seed import seed_history

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def test_funnel_counts_the_runs_started_in_the_window(session: Session) -> None:
    """Signed up joins runs and channel_created events; later stages count runs in the window."""
    seed_history(session, NOW)
    funnel = build_report(session, window=WEEK, now=NOW).funnel
    assert (funnel.signed_up, funnel.setting_up) == (9, 8)
    assert (funnel.ready, funnel.completed, funnel.failed, funnel.in_progress) == (4, 3, 2, 3)


def test_failures_are_grouped_by_reason_without_phone_numbers(session: Session) -> None:
    """Each failed state and reason is one row; the run's number is masked, the channel id kept."""
    seed_history(session, NOW)
    failures = build_report(session, window=WEEK, now=NOW).funnel.failures
    assert {(f.state, f.reason, f.count) for f in failures} == {
        ("failed", "channel 6e47562780CH went to error for +** *** **** 5678", 1),
        ("timed_out", "still setting_up after the deadline", 1),
    }


def test_time_to_ready_has_percentiles_per_utc_day(session: Session) -> None:
    """Each day of the window has its ready count and nearest-rank p50/p90/p99 in seconds."""
    seed_history(session, NOW)
    report = build_report(session, window=WEEK, now=NOW)
    days = {d.day: d for d in report.time_to_ready}
    assert len(days) == 8  # 7 days back to today, both ends included
    two = days[(NOW - timedelta(days=2)).date()]
    one = days[(NOW - timedelta(days=1)).date()]
    assert (two.count, two.p50, two.p90, two.p99) == (2, 600.0, 1800.0, 1800.0)
    assert (one.count, one.p50, one.p99) == (2, 3600.0, 7200.0)
    assert days[NOW.date()].count == 0
    assert days[NOW.date()].p50 is None
    overall = report.time_to_ready_overall
    assert (overall.count, overall.p50, overall.p99) == (4, 1800.0, 7200.0)


def test_slowest_waiting_channels_come_first_and_say_overdue(session: Session) -> None:
    """Pending and waiting runs are listed oldest first; a passed deadline is flagged overdue."""
    seed_history(session, NOW)
    report = build_report(session, window=WEEK, now=NOW, top=1)
    assert report.waiting_total == 2
    [slowest] = report.waiting
    assert (slowest.channel_id, slowest.state, slowest.overdue) == ("ch-g", "waiting", True)
    assert slowest.waited_seconds == pytest.approx(4 * 86_400)


def test_alerts_raised_and_resolved_in_the_window(session: Session) -> None:
    """Alerts count raised/resolved inside the window, and every open one whenever raised."""
    seed_history(session, NOW)
    alerts = build_report(session, window=WEEK, now=NOW).alerts
    assert (alerts.raised, alerts.resolved, alerts.open_now) == (2, 1, 2)
    by_kind = {k.kind: (k.raised, k.resolved, k.open) for k in alerts.by_kind}
    assert by_kind == {"failed": (1, 1, 0), "partner": (0, 0, 1), "stuck": (1, 0, 1)}


def test_a_short_window_leaves_older_runs_out(session: Session) -> None:
    """With --since 30m only what happened in the last half hour counts."""
    seed_history(session, NOW)
    report = build_report(session, window=parse_since("30m"), now=NOW)
    assert (report.funnel.signed_up, report.funnel.setting_up) == (0, 0)
    assert report.waiting_total == 2  # waiting is about now, not about the window


def test_an_empty_history_gives_an_empty_report(session: Session) -> None:
    """No data is zeros and empty lists, not an error."""
    report = build_report(session, window=WEEK, now=NOW)
    assert report.funnel.signed_up == 0
    assert report.time_to_ready_overall.p50 is None
    assert report.waiting == []
    assert report.alerts.by_kind == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("7d", timedelta(days=7), id="days"),
        pytest.param("24h", timedelta(hours=24), id="hours"),
        pytest.param("30m", timedelta(minutes=30), id="minutes"),
        pytest.param(" 90S ", timedelta(seconds=90), id="seconds-upper"),
    ],
)
def test_parse_since_reads_spans(text: str, expected: timedelta) -> None:
    """The --since spans d/h/m/s parse to the matching timedelta."""
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d7", "1w", "0h", "-3d"])
def test_parse_since_refuses_nonsense(text: str) -> None:
    """Anything but a positive number and a d/h/m/s unit is a ValueError."""
    with pytest.raises(ValueError, match="span"):
        parse_since(text)


def test_percentile_is_nearest_rank() -> None:
    """Percentiles are observed values: p50 of 1..4 is 2, p90 and p99 are 4, empty is None."""
    values = [4.0, 1.0, 3.0, 2.0]
    assert [percentile(values, p) for p in (50, 90, 99)] == [2.0, 4.0, 4.0]
    assert percentile([], 50) is None


def test_clean_reason_keeps_the_first_line() -> None:
    """A reason is clipped to its first line and a missing one is named."""
    assert clean_reason("boom\ntraceback") == "boom"
    assert clean_reason(None) == "no reason recorded"
