"""Values from outside are escaped in the report's Markdown and the run's timeline artifact."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from onboarding.escaping import html_text, md, md_cell, md_code
from onboarding.report import render_markdown
from onboarding.report.model import Alerts, DayLatency, Funnel, Report, Waiting
from onboarding.text import mask_phone_in
from onboarding.timeline import render_timeline

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TAG = '<img src=x onerror="alert(1)">'


def test_md_makes_text_inert_and_one_line() -> None:
    """Tags become entities, emphasis/link/code characters are escaped, newlines are spaces."""
    assert md("a <b>\n# c") == "a &lt;b&gt; # c"
    assert (
        md("x_y _z_ *z* [l](u) `c` ~s~ \\") == "x_y \\_z\\_ \\*z\\* \\[l\\](u) \\`c\\` \\~s\\~ \\\\"
    )
    assert md("Müller & Sons &amp;") == "Müller & Sons &amp;amp;"
    assert md_cell("a|b") == "a\\|b"
    assert md_code("ch_1") == "`ch_1`"
    assert md_code("a`b") == "a\\`b"
    assert html_text('"<x>"') == "&quot;&lt;x&gt;&quot;"


def test_mask_phone_in_masks_only_the_known_number() -> None:
    """The run's number is masked however it is spaced; a channel id's digits are left alone."""
    text = "channel 6e47562780CH is in error for +49 151 1234 5678"
    masked = mask_phone_in(text, "+4915112345678")
    assert masked == "channel 6e47562780CH is in error for +** *** **** 5678"
    assert mask_phone_in(text, None) == text


def test_timeline_escapes_every_value_from_outside() -> None:
    """Client name, channel id, statuses and reason cannot add markup or rows to the artifact."""
    text = render_timeline(
        channel_id="ch|`x`",
        client_name=TAG,
        phone_number="+4915112345678",
        rows=[(NOW - timedelta(hours=1), "setting_up|x", "<b>bold</b>")],
        outcome="failed",
        reason="went to error for +49 151 1234 5678 [x](javascript:1)",
        now=NOW,
    )
    assert "<" not in text
    assert "+49 151 1234 5678" not in text
    assert "5678" in text
    assert "\\[x\\](javascript:1)" in text
    table_rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert all(line.count(" | ") == 3 for line in table_rows)  # no cell added by a pipe


def test_report_markdown_escapes_names_and_reasons() -> None:
    """A waiting client's name and a failure reason stay text in the report artifact."""
    day = DayLatency(day=date(2026, 3, 10), count=0)
    report = Report(
        generated_at=NOW,
        since=NOW - timedelta(days=1),
        until=NOW,
        funnel=Funnel(
            signed_up=1,
            setting_up=1,
            ready=0,
            completed=0,
            failed=0,
            in_progress=1,
            failures=[{"state": "failed", "reason": f"{TAG} | x", "count": 1}],
        ),
        time_to_ready=[day],
        time_to_ready_overall=day,
        waiting=[
            Waiting(
                channel_id="ch_1",
                client_id="c",
                client_name=TAG,
                state="waiting",
                availability_status="setting_up",
                started_at=NOW,
                waited_seconds=1.0,
                deadline_at=NOW,
                overdue=False,
            )
        ],
        waiting_total=1,
        alerts=Alerts(raised=0, resolved=0, open_now=0),
    )
    text = render_markdown(report)
    assert "<img" not in text
    assert "&lt;img" in text
    assert "| ch_1 |" in text
    assert "\\| x |" in text
