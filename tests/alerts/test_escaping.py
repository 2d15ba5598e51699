"""Text from outside reaches an alert as text: escaped for Markdown, safe through Apprise's HTML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from onboarding.alerts import AlertContext, AlertKind, AlertService, Notice, render
from tests.fixtures.sinks import SinkServer

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
HOSTILE = AlertContext(
    client_name='<img src=x onerror="alert(1)">',
    phone_number="+49 151 23456789",
    channel_id="ch`<b>x</b>",
    detail="[click](javascript:alert(1)) number +49 151 2345 6789 <script>alert(2)</script>",
)


def _message_text() -> str:
    message = render(
        Notice.RAISED,
        kind=AlertKind.CHANNEL_ERROR,
        partner_id="p1",
        context=HOSTILE,
        first_raised_at=NOW,
        now=NOW,
        repeat=timedelta(hours=4),
        dedup_key="channel_error:channel:p1:ch",
    )
    return message.title + "\n" + message.body


def test_markup_from_outside_is_escaped_in_the_notice() -> None:
    """Tags become entities, a Markdown link is escaped, and the phone number is masked."""
    text = _message_text()
    assert "<" not in text
    assert '&lt;img src=x onerror="alert(1)"&gt;' in text
    assert "\\[click\\](javascript:alert(1))" in text
    assert "23456789" not in text
    assert "2345 6789" not in text
    assert "6789" in text


@pytest.mark.parametrize("test_database", ["sqlite"], indirect=True)
def test_apprise_html_delivery_lets_no_tag_through(engine: Engine, alert_sink: SinkServer) -> None:
    """Through a real Apprise json:// sink asking for HTML, no tag from outside survives."""
    service = AlertService(engine, urls=[alert_sink.url + "?format=html"])

    service.raise_alert(
        kind=AlertKind.CHANNEL_ERROR, partner_id="p1", channel_id="ch-1", context=HOSTILE
    )

    [payload] = alert_sink.received
    html = payload["title"] + payload["message"]
    assert "<p>" in payload["message"] or "<li>" in payload["message"]  # it was converted
    for tag in ("<img", "<script", "<b>", "<a ", "href="):
        assert tag not in html
    assert "&lt;img" in html
