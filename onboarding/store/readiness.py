"""Is the history database there and migrated? Asked before a read command opens it.

A read (``status``, ``history``, ``report``, ``db current``) must never create a database: opening
a SQLite URL whose file does not exist would make an empty one, and a query on an unmigrated
database fails deep inside SQLAlchemy. :func:`require_migrated` answers first, with one sentence
naming the database (password masked) and what to run.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import exc, make_url

from onboarding.store.engine import DatabaseUnavailable, StoreError, masked_url

__all__ = [
    "UPGRADE_HINT",
    "DatabaseMissing",
    "DatabaseNotMigrated",
    "require_migrated",
    "sqlite_path",
]

UPGRADE_HINT = "run `onboarding db upgrade`"


class DatabaseMissing(StoreError):
    """The history database (a SQLite file) does not exist."""


class DatabaseNotMigrated(StoreError):
    """The history database exists but has no tables yet, or an older revision."""


def sqlite_path(url: str) -> Path | None:
    """The file a SQLite URL names (``None`` for other backends, in-memory or URI databases)."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def _sqlite_revision(path: Path, shown: str) -> str | None:
    """The Alembic revision stored in the SQLite file at ``path``, read without writing."""
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as error:
        if "no such table" in str(error):
            return None  # no alembic_version table: not migrated
        raise DatabaseUnavailable(f"history database {shown} cannot be read: {error}") from None
    return row[0] if row else None


def require_migrated(url: str) -> None:
    """Raise unless the history database at ``url`` exists and is at the newest revision.

    Raises :class:`DatabaseMissing`, :class:`DatabaseNotMigrated`, or the engine's
    :class:`~onboarding.store.engine.DatabaseUnavailable` / ``InvalidDatabaseURL``; each message
    is one sentence naming the masked URL. Never creates a file.
    """
    from onboarding.store.migrate import current_revision, head_revision

    shown = masked_url(url)
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise DatabaseMissing(f"history database {shown} does not exist: {UPGRADE_HINT}")
    revision = _sqlite_revision(path, shown) if path is not None else current_revision(url)
    head = head_revision()
    if revision is None:
        raise DatabaseNotMigrated(f"history database {shown} is not migrated: {UPGRADE_HINT}")
    if revision != head:
        raise DatabaseNotMigrated(
            f"history database {shown} is at revision {revision}, not {head}: {UPGRADE_HINT}"
        )
