"""Status observations: a channel's history of status changes, transition-only.

A new row is written only when a channel's (availability_status, status) differs from its latest
row; an identical observation moves that row's ``last_seen_at`` and ``seen_count`` instead, so a
channel polled a thousand times while ``setting_up`` has one row, not a thousand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, insert, update
from sqlmodel import Session, col, select

from onboarding.store.models import ACTIVE_STATES, OnboardingRun, StatusObservation
from onboarding.store.types import utcnow

__all__ = ["Transition", "channel_timeline", "record_observation", "record_transitions"]

_CHUNK = 500
_PENDING = -1  # id placeholder for a row inserted later in the same chunk


class Transition(Protocol):
    """Anything that says a channel's new statuses (e.g. a ``SnapshotChange``)."""

    @property
    def channel_id(self) -> str: ...
    @property
    def availability_status(self) -> str | None: ...
    @property
    def status(self) -> str | None: ...


def _new_row(
    channel_id: str,
    availability_status: str | None,
    status: str | None,
    *,
    run_id: int | None,
    source: str,
    at: datetime,
) -> dict[str, Any]:
    """The columns of a first observation of these statuses, seen ``at``."""
    return {
        "channel_id": channel_id,
        "run_id": run_id,
        "availability_status": availability_status,
        "status": status,
        "source": source,
        "observed_at": at,
        "last_seen_at": at,
        "seen_count": 1,
    }


def _latest(session: Session, channel_id: str) -> StatusObservation | None:
    statement = (
        select(StatusObservation)
        .where(StatusObservation.channel_id == channel_id)
        .order_by(col(StatusObservation.id).desc())
        .limit(1)
    )
    return session.exec(statement).first()


def record_observation(
    session: Session,
    *,
    channel_id: str,
    availability_status: str | None,
    status: str | None,
    source: str,
    run_id: int | None = None,
    seen_at: datetime | None = None,
) -> tuple[StatusObservation, bool]:
    """Record that the channel was seen with these statuses.

    Returns ``(observation, transition)``: ``True`` with a new row when the statuses changed
    (or the channel is new), ``False`` with the latest row, its ``last_seen_at`` moved on.
    """
    seen_at = seen_at or utcnow()
    latest = _latest(session, channel_id)
    if (
        latest is not None
        and latest.availability_status == availability_status
        and latest.status == status
    ):
        latest.last_seen_at = max(latest.last_seen_at, seen_at)
        latest.seen_count += 1
        if latest.run_id is None and run_id is not None:
            latest.run_id = run_id
        session.add(latest)
        session.flush()
        return latest, False
    row = StatusObservation(
        **_new_row(
            channel_id, availability_status, status, run_id=run_id, source=source, at=seen_at
        )
    )
    session.add(row)
    session.flush()
    return row, True


def _chunks(items: Sequence[Transition], size: int) -> Iterable[Sequence[Transition]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def record_transitions(
    session: Session, *, changes: Sequence[Transition], source: str, seen_at: datetime
) -> int:
    """Record many channels' new statuses at once (the sweep); return how many rows were added.

    Three statements per chunk of channels: the latest observation of each, their active runs
    (to link the new rows), then one bulk insert; repeats of the latest row only touch it.
    """
    added = 0
    for chunk in _chunks(changes, _CHUNK):
        ids = [change.channel_id for change in chunk]
        newest = (
            select(func.max(StatusObservation.id))
            .where(col(StatusObservation.channel_id).in_(ids))
            .group_by(col(StatusObservation.channel_id))
        )
        latest = {
            channel_id: (obs_id, availability, status)
            for obs_id, channel_id, availability, status in session.exec(
                select(
                    StatusObservation.id,
                    StatusObservation.channel_id,
                    StatusObservation.availability_status,
                    StatusObservation.status,
                ).where(col(StatusObservation.id).in_(newest))
            )
        }
        runs = dict(
            session.exec(
                select(OnboardingRun.channel_id, OnboardingRun.id).where(
                    col(OnboardingRun.channel_id).in_(ids),
                    col(OnboardingRun.state).in_(ACTIVE_STATES),
                )
            ).all()
        )
        repeats: list[int] = []
        rows: list[dict[str, object]] = []
        for change in chunk:
            previous = latest.get(change.channel_id)
            if previous is not None and previous[1:] == (change.availability_status, change.status):
                if previous[0] != _PENDING:  # not a duplicate of a row this call inserts
                    repeats.append(previous[0])
                continue
            latest[change.channel_id] = (_PENDING, change.availability_status, change.status)
            run_id = runs.get(change.channel_id)
            rows.append(
                _new_row(
                    change.channel_id,
                    change.availability_status,
                    change.status,
                    run_id=run_id,
                    source=source,
                    at=seen_at,
                )
            )
        if rows:
            session.exec(insert(StatusObservation), params=rows)
            added += len(rows)
        if repeats:
            session.exec(
                update(StatusObservation)
                .where(col(StatusObservation.id).in_(repeats))
                .values(last_seen_at=seen_at, seen_count=StatusObservation.seen_count + 1)
            )
    return added


def channel_timeline(session: Session, *, channel_id: str) -> list[StatusObservation]:
    """Every recorded status change of the channel, oldest first."""
    statement = (
        select(StatusObservation)
        .where(StatusObservation.channel_id == channel_id)
        .order_by(col(StatusObservation.observed_at), col(StatusObservation.id))
    )
    return list(session.exec(statement))
