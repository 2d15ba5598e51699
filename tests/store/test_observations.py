"""Status observations are transition-only: repeats move last_seen_at, changes add a row."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, func, select

from onboarding.store import (
    SnapshotChange,
    StatusObservation,
    channel_timeline,
    record_observation,
    record_transitions,
)
from tests.fixtures.database import T0, start_test_run


def _rows(session: Session) -> int:
    return session.exec(select(func.count()).select_from(StatusObservation)).one()


def test_hundred_identical_polls_make_one_row(session: Session) -> None:
    """100 identical polls leave one row whose last_seen_at is the last poll's time."""
    results = [
        record_observation(
            session,
            channel_id="ch-1",
            availability_status="setting_up",
            status="pending",
            source="poll",
            seen_at=T0 + timedelta(seconds=n),
        )
        for n in range(100)
    ]
    session.commit()
    assert [transition for _, transition in results] == [True] + [False] * 99
    assert _rows(session) == 1
    (row,) = channel_timeline(session, channel_id="ch-1")
    assert row.observed_at == T0
    assert row.last_seen_at == T0 + timedelta(seconds=99)
    assert row.seen_count == 100


def test_a_change_of_either_status_is_a_transition(session: Session) -> None:
    """A new availability_status or a new status each add a row, in timeline order."""
    seen = [
        ("setting_up", "pending"),
        ("setting_up", "pending"),
        ("setting_up", "ready"),
        ("ready", "ready"),
        ("ready", "ready"),
    ]
    for n, (availability, status) in enumerate(seen):
        record_observation(
            session,
            channel_id="ch-1",
            availability_status=availability,
            status=status,
            source="poll",
            seen_at=T0 + timedelta(minutes=n),
        )
    timeline = channel_timeline(session, channel_id="ch-1")
    assert [(r.availability_status, r.status) for r in timeline] == [
        ("setting_up", "pending"),
        ("setting_up", "ready"),
        ("ready", "ready"),
    ]
    assert timeline[-1].last_seen_at == T0 + timedelta(minutes=4)


def test_bulk_transitions_skip_repeats_and_link_active_runs(session: Session) -> None:
    """record_transitions adds rows only for real changes and links each to the channel's run."""
    run, _ = start_test_run(session, "ch-0", trigger="schedule")
    record_observation(
        session, channel_id="ch-1", availability_status="setting_up", status=None, source="poll"
    )
    changes = [
        SnapshotChange("ch-0", "c", None, None, "setting_up", None, is_new=True),
        SnapshotChange("ch-1", "c", None, None, "setting_up", None),  # already the latest row
        SnapshotChange("ch-2", "c", "setting_up", None, "ready", None),
    ]
    added = record_transitions(session, changes=changes, source="sweep", seen_at=T0)
    assert added == 2
    assert _rows(session) == 3
    (linked,) = channel_timeline(session, channel_id="ch-0")
    assert (linked.run_id, linked.source) == (run.id, "sweep")
    (repeat,) = channel_timeline(session, channel_id="ch-1")
    assert (repeat.seen_count, repeat.source) == (2, "poll")
    assert record_transitions(session, changes=changes, source="sweep", seen_at=T0) == 0
