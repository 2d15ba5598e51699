"""Engines: SQLite tuning, UTC timestamps, and clear errors for a database that is down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlmodel import Session

from onboarding.store import (
    DatabaseUnavailable,
    InvalidDatabaseURL,
    OnboardingRun,
    check_connection,
    make_engine,
    session_scope,
    upgrade,
)
from tests.servers import free_port


def test_sqlite_runs_in_wal_mode_with_busy_timeout(tmp_path: Path) -> None:
    """SQLite connections use WAL, wait up to 5 s for a lock and enforce foreign keys."""
    engine = make_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_timestamps_come_back_aware_utc(session: Session) -> None:
    """A timestamp stored in any zone reads back as the same instant, tz-aware, in UTC."""
    cest = timezone(timedelta(hours=2))
    run = OnboardingRun(
        partner_id="p",
        client_id="c",
        channel_id="ch",
        trigger="manual",
        deadline_at=datetime(2025, 6, 1, 14, 0, tzinfo=cest),
    )
    session.add(run)
    session.commit()
    session.expire_all()
    stored = session.get(OnboardingRun, run.id)
    assert stored is not None
    assert stored.deadline_at == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    assert stored.deadline_at.utcoffset() == timedelta(0)
    assert stored.started_at.tzinfo is not None


def test_naive_timestamps_are_refused(session: Session) -> None:
    """A naive datetime is an error, not silently taken as local or UTC time."""
    session.add(
        OnboardingRun(
            partner_id="p",
            client_id="c",
            channel_id="ch",
            trigger="manual",
            deadline_at=datetime(2025, 6, 1, 12, 0),
        )
    )
    with pytest.raises(Exception, match="naive datetime"):
        session.flush()


@pytest.fixture(params=["postgresql", "sqlite"])
def down_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL nothing answers at: a closed port, or a file in a missing directory."""
    if request.param == "postgresql":
        return f"postgresql+psycopg://postgres:s3cret-pw@127.0.0.1:{free_port()}/onboarding"
    return f"sqlite:///{tmp_path}/no-such-dir/history.db"


def test_check_connection_names_the_masked_url(down_url: str) -> None:
    """A database that is down raises DatabaseUnavailable naming the URL, password masked."""
    engine = make_engine(down_url)
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            check_connection(engine)
    finally:
        engine.dispose()
    message = str(caught.value)
    assert "is unreachable" in message
    assert down_url.replace("s3cret-pw", "***") in message
    assert "s3cret-pw" not in message


def test_first_use_of_a_session_raises_database_unavailable(down_url: str) -> None:
    """Using a session on a database that is down raises DatabaseUnavailable, not a driver error."""
    engine = make_engine(down_url)
    try:
        with (
            pytest.raises(DatabaseUnavailable, match="is unreachable"),
            session_scope(engine) as session,
        ):
            session.get(OnboardingRun, 1)
    finally:
        engine.dispose()


def test_upgrade_of_a_database_that_is_down_raises_database_unavailable(down_url: str) -> None:
    """Migrating a database that is down fails with the same clear error."""
    with pytest.raises(DatabaseUnavailable, match="is unreachable") as caught:
        upgrade(down_url)
    assert "s3cret-pw" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["not a url", "nosuchdb://host/db"], ids=["unparseable", "unknown-dialect"]
)
def test_bad_urls_raise_invalid_database_url(url: str) -> None:
    """A URL that cannot name a database fails at once with InvalidDatabaseURL."""
    with pytest.raises(InvalidDatabaseURL):
        make_engine(url)
