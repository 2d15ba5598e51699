"""The pure parts: kinds, dedup keys, the notify decision and the alert text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from onboarding.alerts import (
    AlertContext,
    AlertKind,
    Notice,
    decide,
    dedup_key,
    kind_info,
    mask_phone,
    render,
)

NOW = datetime(2025, 3, 4, 3, 0, tzinfo=UTC)
REPEAT = timedelta(hours=4)


@dataclass
class _Open:
    first_raised_at: datetime
    last_notified_at: datetime | None


def test_every_kind_has_a_hint_and_severity() -> None:
    """Each kind says how bad it is and what to check."""
    assert {k.value for k in AlertKind} == {
        "channel_error",
        "channel_not_found",
        "setup_deadline_exceeded",
        "unknown_status",
        "auth_failed",
        "hub_unavailable",
        "flow_crashed",
        "permission_pending",
        "callback_failed",
        "account_problem",
        "inbox_dead",
    }
    for kind in AlertKind:
        assert kind_info(kind).hint
        assert kind_info(kind).severity


@pytest.mark.parametrize("kind", [AlertKind.AUTH_FAILED, AlertKind.HUB_UNAVAILABLE])
def test_partner_wide_kinds_share_one_key_across_channels(kind: AlertKind) -> None:
    """auth_failed and hub_unavailable dedup per partner, whatever the channel."""
    keys = {dedup_key(kind, partner_id="p1", channel_id=f"ch{i}") for i in range(5)}
    assert len(keys) == 1
    assert keys != {dedup_key(kind, partner_id="p2", channel_id="ch0")}


def test_channel_kinds_key_per_channel_and_need_a_channel() -> None:
    """Channel-scoped kinds get one key per channel and refuse a missing channel id."""
    a = dedup_key(AlertKind.CHANNEL_ERROR, partner_id="p1", channel_id="a")
    b = dedup_key(AlertKind.CHANNEL_ERROR, partner_id="p1", channel_id="b")
    c = dedup_key(AlertKind.FLOW_CRASHED, partner_id="p1", channel_id="a")
    assert len({a, b, c}) == 3
    with pytest.raises(ValueError, match="channel_id is required"):
        dedup_key(AlertKind.CHANNEL_ERROR, partner_id="p1", channel_id=None)


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        pytest.param(None, Notice.RAISED, id="new-problem"),
        pytest.param(_Open(NOW, NOW), None, id="just-notified"),
        pytest.param(_Open(NOW - REPEAT, NOW - REPEAT + timedelta(seconds=1)), None, id="not-due"),
        pytest.param(_Open(NOW - REPEAT, NOW - REPEAT), Notice.REPEAT, id="due"),
        pytest.param(_Open(NOW - timedelta(minutes=1), None), None, id="raiser-still-sending"),
        pytest.param(_Open(NOW - REPEAT * 2, None), Notice.REPEAT, id="lost-notification"),
        pytest.param(
            _Open(datetime(2025, 3, 3), datetime(2025, 3, 3, 22)), Notice.REPEAT, id="naive-utc"
        ),
    ],
)
def test_decide(alert: _Open | None, expected: Notice | None) -> None:
    """Notify a new problem, repeat after the interval, otherwise stay quiet."""
    assert decide(alert, now=NOW, repeat=REPEAT) is expected


def test_raised_text_tells_a_person_what_to_do() -> None:
    """The raised notice names the client, masked phone, channel, since, run URL and a hint."""
    context = AlertContext(
        client_name="Bäckerei Müller",
        phone_number="+49 151 23456789",
        channel_id="ch_42",
        since=NOW - timedelta(hours=3, minutes=12),
        run_url="http://127.0.0.1:4200/runs/flow-run/abc",
        detail="Phone number verification failed",
    )
    message = render(
        Notice.RAISED,
        kind=AlertKind.CHANNEL_ERROR,
        partner_id="p1",
        context=context,
        first_raised_at=NOW,
        now=NOW,
        repeat=REPEAT,
        dedup_key="k",
    )
    text = message.title + message.body
    for expected in ("Bäckerei Müller", "6789", "ch_42", "3 h 12 min", "/runs/flow-run/abc"):
        assert expected in text
    assert "Phone number verification failed" in message.body
    assert "setup_info.error" in message.body
    assert "23456789" not in text


def test_resolved_text_says_it_cleared() -> None:
    """The resolve notice says resolved and how long the problem lasted."""
    message = render(
        Notice.RESOLVED,
        kind=AlertKind.SETUP_DEADLINE_EXCEEDED,
        partner_id="p1",
        context=AlertContext(client_name="Acme", channel_id="ch_1"),
        first_raised_at=NOW - timedelta(days=1, hours=2),
        now=NOW,
        repeat=REPEAT,
        dedup_key="k",
    )
    assert message.title.startswith("[RESOLVED]")
    assert "1 d 2 h" in message.body


def test_context_details_keep_only_the_masked_phone() -> None:
    """What goes to the history holds the last four digits of the phone number only."""
    details = AlertContext(phone_number="+49 151 23456789").to_details()
    assert details["phone_number"] == mask_phone("+49 151 23456789")
    assert details["phone_number"].endswith("6789")
    assert "2345" not in details["phone_number"]
    assert AlertContext.from_details(details).phone_number == details["phone_number"]
