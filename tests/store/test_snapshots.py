"""Channel snapshots: bulk upsert that reports exactly the channels whose status changed."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, func, select

from onboarding.store import (
    ChannelSnapshot,
    SnapshotIn,
    get_snapshot,
    snapshots_by_status,
    upsert_snapshots,
)
from tests.fixtures.database import T0

T1 = T0 + timedelta(minutes=1)


def _snaps(n: int, availability: str = "setting_up") -> list[SnapshotIn]:
    return [
        SnapshotIn(
            channel_id=f"ch-{i}",
            client_id=f"cl-{i}",
            availability_status=availability,
            status="pending",
            client_name=f"Client {i}",
        )
        for i in range(n)
    ]


def test_first_upsert_reports_every_channel_as_new(session: Session) -> None:
    """Channels seen for the first time are all changes, flagged new, with no old status."""
    changes = upsert_snapshots(session, partner_id="p", snapshots=_snaps(3), seen_at=T0)
    assert [c.channel_id for c in changes] == ["ch-0", "ch-1", "ch-2"]
    assert all(c.is_new and c.old_availability_status is None for c in changes)
    assert session.exec(select(func.count()).select_from(ChannelSnapshot)).one() == 3


def test_second_upsert_reports_only_changed_channels(session: Session) -> None:
    """A re-upsert reports only status changes; only they move changed_at, all move last_seen_at."""
    upsert_snapshots(session, partner_id="p", snapshots=_snaps(2500), seen_at=T0)
    again = _snaps(2500)
    again[7] = SnapshotIn("ch-7", "cl-7", "ready", "ready")
    again[2100] = SnapshotIn("ch-2100", "cl-2100", "setting_up", "connected")
    changes = upsert_snapshots(session, partner_id="p", snapshots=again, seen_at=T1)
    session.commit()
    assert [(c.channel_id, c.old_availability_status, c.availability_status) for c in changes] == [
        ("ch-7", "setting_up", "ready"),
        ("ch-2100", "setting_up", "setting_up"),
    ]
    assert not any(c.is_new for c in changes)
    changed, same = (
        get_snapshot(session, channel_id="ch-7"),
        get_snapshot(session, channel_id="ch-8"),
    )
    assert changed is not None
    assert same is not None
    assert (changed.changed_at, changed.last_seen_at, changed.first_seen_at) == (T1, T1, T0)
    assert (same.changed_at, same.last_seen_at) == (T0, T1)
    assert [
        s.channel_id
        for s in snapshots_by_status(session, partner_id="p", availability_status="ready")
    ] == ["ch-7"]


def test_duplicate_channel_in_one_batch_keeps_the_last_entry(session: Session) -> None:
    """A channel listed twice in one batch is stored once, as its last entry says."""
    batch = [
        SnapshotIn("ch-1", availability_status="setting_up"),
        SnapshotIn("ch-1", availability_status="ready"),
    ]
    changes = upsert_snapshots(session, partner_id="p", snapshots=batch, seen_at=T0)
    assert [(c.channel_id, c.availability_status) for c in changes] == [("ch-1", "ready")]
    snap = get_snapshot(session, channel_id="ch-1")
    assert snap is not None
    assert snap.availability_status == "ready"
