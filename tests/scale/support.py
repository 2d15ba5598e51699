"""Helpers for tests running Prefect on PostgreSQL and Redis (tests/scale, tests/faults)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, make_url

__all__ = ["fresh_database", "own_redis_db"]


@contextmanager
def fresh_database(admin: Engine, prefix: str, *, driver: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database's URL (``driver`` e.g. ``postgresql+asyncpg``); dropped after."""
    name = f"{prefix}_{secrets.token_hex(5)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(str(admin.url)).set(database=name)
    if driver:
        url = url.set(drivername=driver)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %(name)s AND pid <> pg_backend_pid()",
                {"name": name},
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')


@contextmanager
def own_redis_db(number: int) -> Iterator[int]:
    """Redis db ``number`` on 127.0.0.1:6379: checked empty first, flushed (only it) after."""
    pytest.importorskip("prefect_redis", reason="prefect-redis is needed for the scaled setup")
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=number)
    try:
        keys = client.dbsize()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at 127.0.0.1:6379: {exc}")
    assert keys == 0, f"Redis db {number} is not empty: is another test session using it?"
    try:
        yield number
    finally:
        client.flushdb()
        client.close()
