"""Alerts and their delivery attempts.

One OPEN alert per ``dedup_key`` is enforced by a partial unique index; :func:`open_alert` is the
race-safe "raise or re-raise". Deliveries name their sink by scheme and host only: a full
Apprise URL often carries tokens (``slack://T/B/secret``), which never reach the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from onboarding.store.models import Alert, AlertDelivery
from onboarding.store.race import insert_or_winner
from onboarding.store.types import utcnow

__all__ = [
    "failed_deliveries",
    "get_open_alert",
    "note_alert_notified",
    "open_alert",
    "open_alerts",
    "record_delivery",
    "resolve_alert",
    "sink_label",
]


def sink_label(url: str) -> str:
    """``scheme://host`` of an Apprise URL, or ``scheme://`` when the host is not a hostname.

    Apprise puts tokens where a host would be for some services (``slack://TokenA/...``), so a
    host is kept only when it looks like a DNS name or an address (it has a dot, or is
    ``localhost``). User, password, path and query are always dropped.
    """
    if "://" not in url:
        return "unknown://"
    parts = urlsplit(url)
    scheme = parts.scheme or "unknown"
    try:
        host = parts.hostname or ""
    except ValueError:
        host = ""
    if host and ("." in host or host == "localhost"):
        return f"{scheme}://{host}"
    return f"{scheme}://"


def get_open_alert(session: Session, *, dedup_key: str) -> Alert | None:
    """The unresolved alert with ``dedup_key``, or ``None``."""
    statement = select(Alert).where(Alert.dedup_key == dedup_key, col(Alert.resolved_at).is_(None))
    return session.exec(statement).first()


def open_alert(
    session: Session,
    *,
    dedup_key: str,
    kind: str,
    severity: str,
    partner_id: str,
    channel_id: str | None,
    run_id: int | None,
    message: str,
    details: dict[str, Any] | None,
    now: datetime | None = None,
) -> tuple[Alert, bool]:
    """Raise the alert, or re-raise the open one with the same key; return ``(alert, created)``.

    Re-raising moves ``last_raised_at`` and takes the new message and details.
    """
    now = now or utcnow()
    alert = get_open_alert(session, dedup_key=dedup_key)
    if alert is None:
        alert = Alert(
            dedup_key=dedup_key,
            kind=kind,
            severity=severity,
            partner_id=partner_id,
            channel_id=channel_id,
            run_id=run_id,
            message=message,
            details=details,
            first_raised_at=now,
            last_raised_at=now,
        )
        alert, created = insert_or_winner(
            session, alert, lambda: get_open_alert(session, dedup_key=dedup_key)
        )
        if created:
            return alert, True
    alert.last_raised_at = max(alert.last_raised_at, now)
    alert.message = message
    alert.details = details
    alert.severity = severity
    session.add(alert)
    session.flush()
    return alert, False


def _require_alert(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise LookupError(f"no alert with id {alert_id}")
    return alert


def note_alert_notified(session: Session, *, alert_id: int, at: datetime) -> Alert:
    """A notice about the alert went out at ``at``."""
    alert = _require_alert(session, alert_id)
    alert.last_notified_at = at
    alert.notify_count += 1
    session.add(alert)
    session.flush()
    return alert


def resolve_alert(session: Session, *, alert_id: int, at: datetime) -> Alert:
    """The problem cleared at ``at``; a later raise with the same key opens a new alert."""
    alert = _require_alert(session, alert_id)
    if alert.resolved_at is None:
        alert.resolved_at = at
        session.add(alert)
        session.flush()
    return alert


def open_alerts(session: Session, *, channel_id: str | None = None) -> list[Alert]:
    """Unresolved alerts (of one channel, if given), oldest first."""
    statement = select(Alert).where(col(Alert.resolved_at).is_(None))
    if channel_id is not None:
        statement = statement.where(Alert.channel_id == channel_id)
    return list(session.exec(statement.order_by(col(Alert.first_raised_at), col(Alert.id))))


def record_delivery(
    session: Session,
    *,
    alert_id: int,
    sink: str,
    notice: str,
    outcome: str,
    error: str | None = None,
    at: datetime | None = None,
) -> AlertDelivery:
    """Record one delivery attempt; ``sink`` is reduced to :func:`sink_label` whatever is passed."""
    delivery = AlertDelivery(
        alert_id=alert_id,
        sink=sink_label(sink),
        notice=notice,
        outcome=outcome,
        error=error,
        attempted_at=at or utcnow(),
    )
    session.add(delivery)
    session.flush()
    return delivery


def failed_deliveries(session: Session, *, since: datetime) -> list[AlertDelivery]:
    """Failed delivery attempts at or after ``since``, oldest first."""
    statement = (
        select(AlertDelivery)
        .where(AlertDelivery.outcome == "failed", AlertDelivery.attempted_at >= since)
        .order_by(col(AlertDelivery.attempted_at), col(AlertDelivery.id))
    )
    return list(session.exec(statement))
