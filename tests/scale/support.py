"""Helpers for tests running Prefect on PostgreSQL and Redis (tests/scale, tests/faults)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

__all__ = ["own_redis_db"]


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
