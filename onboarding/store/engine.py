"""Engines and sessions for the history database, and the errors a caller can act on.

Error tree::

    StoreError
    ├── InvalidDatabaseURL     the URL cannot be parsed or names an unknown driver
    └── DatabaseUnavailable    the server/file cannot be reached (raised from the driver error)

Both messages name the URL with its password masked.

SQLite runs in WAL mode with ``synchronous=FULL``: each commit is on disk before it returns, so
a webhook answered ``202`` survives a power cut (``NORMAL`` may lose the last commits; what FULL
costs the intake is measured in BENCHMARKS.md). Also a busy timeout, foreign keys on, and every
transaction opened with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes
fails at once with "database is locked" when another connection wrote in between (the busy
timeout cannot help it), while an immediate one waits its turn. Python's sqlite3 module's own
transaction handling is switched off so that SAVEPOINTs (used by the race-safe inserts) nest
inside the transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, make_url
from sqlalchemy.engine import URL
from sqlmodel import Session

__all__ = [
    "CONNECT_TIMEOUT",
    "DatabaseUnavailable",
    "InvalidDatabaseURL",
    "StoreError",
    "check_connection",
    "make_engine",
    "masked_url",
    "session_scope",
]

CONNECT_TIMEOUT = 5  # seconds, both for a PostgreSQL connect and SQLite's busy wait


class StoreError(Exception):
    """Base of the history database's errors."""


class InvalidDatabaseURL(StoreError):
    """The database URL cannot be used (syntax, unknown driver)."""


class DatabaseUnavailable(StoreError):
    """The history database cannot be reached; the message names the (masked) URL."""


def masked_url(url: str | URL) -> str:
    """``url`` as text, its password and query masked (:func:`onboarding.redact.mask_url`)."""
    from onboarding.redact import mask_url

    try:
        text = make_url(url).render_as_string(hide_password=False)
    except exc.ArgumentError:
        return "<unparseable database URL>"
    return mask_url(text)


def _reason(error: BaseException) -> str:
    """The driver's first line, without SQLAlchemy's background-link boilerplate."""
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def _unavailable(url: URL, error: BaseException) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"history database {masked_url(url)} is unreachable: {_reason(error)}"
    )


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module (see module docstring).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {CONNECT_TIMEOUT * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for ``url`` (SQLite or ``postgresql+psycopg``), tuned as the module describes.

    Connection failures surface as :class:`DatabaseUnavailable` on first use; a bad URL raises
    :class:`InvalidDatabaseURL` here.
    """
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise InvalidDatabaseURL(f"cannot parse the history database URL: {error}") from None
    connect_args: dict[str, Any] = dict(kwargs.pop("connect_args", {}))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", CONNECT_TIMEOUT)
    elif backend == "postgresql":
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT)
        kwargs.setdefault("pool_pre_ping", True)
    try:
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise InvalidDatabaseURL(
            f"cannot use history database {masked_url(parsed)}: {_reason(error)}"
        ) from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)

    @event.listens_for(engine, "handle_error")
    def _connect_failed(context: exc.ExceptionContext) -> BaseException | None:
        # Only failures to *open* a connection mean "unreachable"; statement errors pass through.
        if context.connection is None or context.is_pre_ping:
            return _unavailable(parsed, context.original_exception)
        return None

    return engine


def check_connection(engine: Engine) -> None:
    """Open one connection and run ``SELECT 1``; raise :class:`DatabaseUnavailable` if it fails."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except DatabaseUnavailable:
        raise
    except exc.DBAPIError as error:
        raise _unavailable(engine.url, error) from error


@contextlib.contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
