"""Which failed deliveries to send again: a pure choice over the delivery history.

The history names a sink only by ``scheme://host`` (the store drops everything else), so two
sinks can share a label (every ``slack://`` URL does). A failed attempt's error text starts with
the sink's fingerprint, and every notice goes out as one batch with one timestamp, so for each
(alert, label) the *latest batch* says which sinks still failed: its failed rows, by fingerprint.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlmodel import Session, col, select

from onboarding import store
from onboarding.alerts.delivery import fingerprint_in
from onboarding.alerts.policy import Notice

__all__ = ["DeliveryRow", "PendingRetry", "deliveries_of", "pending_retries"]


class DeliveryRow(Protocol):
    """The columns of a recorded delivery attempt the choice looks at."""

    alert_id: int
    sink: str
    notice: str
    outcome: str
    error: str | None
    attempted_at: datetime


@dataclass(frozen=True, slots=True)
class PendingRetry:
    """One notice of one alert to send again to the sink with ``fingerprint``."""

    alert_id: int
    notice: Notice
    fingerprint: str


def pending_retries(
    rows: Iterable[DeliveryRow],
    *,
    resolved: Mapping[int, bool],
    configured: set[str],
    max_attempts: int,
) -> list[PendingRetry]:
    """The retries due, given every delivery row of the alerts concerned.

    A failed row is retried when it belongs to the latest batch of its (alert, sink label), its
    sink is still configured (``configured`` holds fingerprints), it has failed fewer than
    ``max_attempts`` times for that notice, and it is not a raised/repeat notice of an alert
    that is resolved by now (the resolve notice supersedes it).
    """
    groups: dict[tuple[int, str], list[DeliveryRow]] = defaultdict(list)
    failures: dict[tuple[int, str, str], int] = defaultdict(int)
    for row in rows:
        groups[(row.alert_id, row.sink)].append(row)
        mark = fingerprint_in(row.error)
        if row.outcome == "failed" and mark:
            failures[(row.alert_id, row.notice, mark)] += 1
    due: dict[PendingRetry, None] = {}
    for (alert_id, _sink), group in groups.items():
        latest = max(row.attempted_at for row in group)
        for row in group:
            mark = fingerprint_in(row.error)
            if row.attempted_at != latest or row.outcome != "failed":
                continue
            if mark is None or mark not in configured:
                continue
            notice = Notice(row.notice)
            if notice is not Notice.RESOLVED and resolved.get(alert_id, False):
                continue
            if failures[(alert_id, row.notice, mark)] >= max_attempts:
                continue
            due[PendingRetry(alert_id, notice, mark)] = None
    return list(due)


def deliveries_of(session: Session, *, alert_ids: list[int]) -> list[store.AlertDelivery]:
    """Every delivery row of these alerts, oldest first.

    Read here because the store offers only the failed rows; the retry needs the sent ones too.
    """
    statement = (
        select(store.AlertDelivery)
        .where(col(store.AlertDelivery.alert_id).in_(alert_ids))
        .order_by(col(store.AlertDelivery.attempted_at), col(store.AlertDelivery.id))
    )
    return list(session.exec(statement))
