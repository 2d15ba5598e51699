"""When to notify: the pure decision between "raised", "repeat" and silence.

No I/O here; :class:`~onboarding.alerts.service.AlertService` feeds it the open alert read from the
history and the current time, so the rule can be tested with plain values.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

__all__ = ["Notice", "OpenAlertState", "as_utc", "decide"]


class Notice(StrEnum):
    """Which message a delivery carries."""

    RAISED = "raised"
    REPEAT = "repeat"
    RESOLVED = "resolved"


class OpenAlertState(Protocol):
    """The fields of an open alert the policy looks at (the store's ``Alert`` has them)."""

    first_raised_at: datetime
    last_notified_at: datetime | None


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime; naive values (SQLite returns those) are taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def decide(alert: OpenAlertState | None, *, now: datetime, repeat: timedelta) -> Notice | None:
    """The notice to send now for a problem that holds, or None to stay quiet.

    No open alert means the problem is new: "raised". An open alert is repeated once ``repeat``
    has passed since it was last notified; one that was never notified counts from when it was
    first raised, so a concurrent raiser (which is notifying right now) does not cause a duplicate
    while a notification lost to a crash is still sent after one interval.
    """
    if alert is None:
        return Notice.RAISED
    reference = alert.last_notified_at or alert.first_raised_at
    if as_utc(now) - as_utc(reference) >= repeat:
        return Notice.REPEAT
    return None
