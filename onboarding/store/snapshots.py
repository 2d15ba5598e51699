"""Channel snapshots: the latest known state of every channel, bulk-upserted by the watcher.

:func:`upsert_snapshots` reads the batch's existing rows (one ``IN`` query per chunk), works out
the changes in Python, then writes the chunk with one dialect-native
``INSERT ... ON CONFLICT DO UPDATE`` executed for many rows, and returns the changes so the
watcher knows every transition without a second query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from onboarding.store.models import ChannelSnapshot

__all__ = [
    "SnapshotChange",
    "SnapshotIn",
    "get_snapshot",
    "snapshots_by_status",
    "unsettled_snapshots",
    "upsert_snapshots",
]

_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class SnapshotIn:
    """One channel as the Partner API lists it."""

    channel_id: str
    client_id: str | None = None
    availability_status: str | None = None
    status: str | None = None
    phone_number: str | None = None
    client_name: str | None = None
    modified_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SnapshotChange:
    """A channel whose statuses differ from its snapshot (old ones are ``None`` when new)."""

    channel_id: str
    client_id: str | None
    old_availability_status: str | None
    old_status: str | None
    availability_status: str | None
    status: str | None
    is_new: bool = False


def _insert_for(session: Session) -> Any:
    """The dialect's ``insert`` construct that knows ``ON CONFLICT``."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"bulk upsert is not implemented for {name}")


def _upsert_statement(session: Session) -> Any:
    table = ChannelSnapshot.__table__  # type: ignore[attr-defined]
    statement = _insert_for(session)(table)
    new = statement.excluded
    status_changed = or_(
        table.c.availability_status.is_distinct_from(new.availability_status),
        table.c.status.is_distinct_from(new.status),
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c.channel_id],
        set_={
            "partner_id": new.partner_id,
            "client_id": new.client_id,
            "availability_status": new.availability_status,
            "status": new.status,
            "phone_number": new.phone_number,
            "client_name": new.client_name,
            "modified_at": new.modified_at,
            "last_seen_at": new.last_seen_at,
            "changed_at": case((status_changed, new.changed_at), else_=table.c.changed_at),
        },
    )


def upsert_snapshots(
    session: Session, *, partner_id: str, snapshots: Sequence[SnapshotIn], seen_at: datetime
) -> list[SnapshotChange]:
    """Insert or update the snapshots of ``snapshots``; return the channels whose status changed.

    A channel listed twice in one call keeps its last entry.
    """
    latest = {snap.channel_id: snap for snap in snapshots}
    batch = list(latest.values())
    statement = _upsert_statement(session)
    changes: list[SnapshotChange] = []
    for start in range(0, len(batch), _CHUNK):
        chunk = batch[start : start + _CHUNK]
        known = {
            channel_id: (availability, status)
            for channel_id, availability, status in session.exec(
                select(
                    ChannelSnapshot.channel_id,
                    ChannelSnapshot.availability_status,
                    ChannelSnapshot.status,
                ).where(col(ChannelSnapshot.channel_id).in_([snap.channel_id for snap in chunk]))
            )
        }
        rows = []
        for snap in chunk:
            old = known.get(snap.channel_id)
            if old is None or old != (snap.availability_status, snap.status):
                changes.append(
                    SnapshotChange(
                        channel_id=snap.channel_id,
                        client_id=snap.client_id,
                        old_availability_status=old[0] if old else None,
                        old_status=old[1] if old else None,
                        availability_status=snap.availability_status,
                        status=snap.status,
                        is_new=old is None,
                    )
                )
            rows.append(
                {
                    "channel_id": snap.channel_id,
                    "partner_id": partner_id,
                    "client_id": snap.client_id,
                    "availability_status": snap.availability_status,
                    "status": snap.status,
                    "phone_number": snap.phone_number,
                    "client_name": snap.client_name,
                    "modified_at": snap.modified_at,
                    "first_seen_at": seen_at,
                    "last_seen_at": seen_at,
                    "changed_at": seen_at,
                }
            )
        session.connection().execute(statement, rows)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, ChannelSnapshot):  # loaded snapshots are stale now
            session.expire(obj)
    return changes


def get_snapshot(session: Session, *, channel_id: str) -> ChannelSnapshot | None:
    """The channel's snapshot, or ``None`` if the watcher never saw it."""
    return session.get(ChannelSnapshot, channel_id)


def snapshots_by_status(
    session: Session, *, partner_id: str, availability_status: str
) -> list[ChannelSnapshot]:
    """The partner's channels last seen with ``availability_status``."""
    statement = select(ChannelSnapshot).where(
        ChannelSnapshot.partner_id == partner_id,
        ChannelSnapshot.availability_status == availability_status,
    )
    return list(session.exec(statement))


def unsettled_snapshots(session: Session, *, partner_id: str) -> list[ChannelSnapshot]:
    """The partner's channels last seen in any status but ``ready`` (the ones to keep watching)."""
    statement = select(ChannelSnapshot).where(
        ChannelSnapshot.partner_id == partner_id,
        or_(
            col(ChannelSnapshot.availability_status).is_(None),
            ChannelSnapshot.availability_status != "ready",
        ),
    )
    return list(session.exec(statement))
