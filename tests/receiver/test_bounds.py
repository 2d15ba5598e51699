"""Bounds a token holder cannot push past: database growth, receiver memory, lost commits."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from anyio import to_thread
from pydantic import SecretStr
from sqlalchemy import Engine

from onboarding.receiver import HandoffEvent, replay_unhandled
from tests.receiver.conftest import StartReceiver
from tests.receiver.support import Served, wait_until

SQLITE = pytest.mark.parametrize("test_database", ["sqlite"], indirect=True)
MB = 1024 * 1024


def _rss() -> int:
    """This process's resident set size in bytes (the receiver is served in this process)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _database_bytes(engine: Engine) -> int:
    """The size of the history database: pages in use (SQLite) or the inbox table's relation."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
            size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
            return int(pages) * int(size)
        total = conn.exec_driver_sql("SELECT pg_total_relation_size('inbound_event')")
        return int(total.scalar_one())


def _post_all(receiver: Served, bodies: Iterable[bytes], *, workers: int = 4) -> list[int]:
    with ThreadPoolExecutor(workers) as pool:
        return [response.status_code for response in pool.map(receiver.post, bodies)]


def _post_events(receiver: Served, numbers: range) -> list[int]:
    """POST a :func:`_big_event` per number, each built when sent (the test holds none)."""
    with ThreadPoolExecutor(4) as pool:
        sent = pool.map(lambda n: receiver.post(_big_event(n)).status_code, numbers)
        return list(sent)


def test_a_thousand_bad_signatures_grow_the_database_by_under_5_mb(
    start_receiver: StartReceiver, engine: Engine
) -> None:
    """1,000 distinct 64 KB bodies with a bad signature: 1,000 rows, under 5 MB between them."""
    receiver = start_receiver(None, hmac_secret=SecretStr("relay-key-Gr0wth"))
    bodies = (f"{n:06d}".encode() + b"x" * 65_530 for n in range(1000))
    before = _database_bytes(engine)

    statuses = _post_all(receiver, bodies)

    assert statuses == [401] * 1000
    assert len(receiver.rows()) == 1000
    assert _database_bytes(engine) - before < 5 * MB


@dataclass
class GatedHandoff:
    """A Prefect that does not answer until ``gate`` is set; counts the events it got."""

    gate: threading.Event = field(default_factory=threading.Event)
    calls: list[int] = field(default_factory=list)

    async def __call__(self, event: HandoffEvent) -> str:
        """Record the event, wait for the gate, answer ``handled``."""
        self.calls.append(event.inbox_id)
        await to_thread.run_sync(self.gate.wait, abandon_on_cancel=True)
        return "handled"


def _big_event(n: int) -> bytes:
    """A ~190 KB channel event of 13,500 small keys (its parsed form is several times that)."""
    data = {"id": f"ch-{n}", **{f"{i:x}": i for i in range(13_500)}}
    return json.dumps({"event": "channel_created", "data": data}).encode()


@pytest.mark.parametrize("test_database", ["sqlite"], indirect=True)
def test_memory_stays_flat_with_the_handoff_queue_full(start_receiver: StartReceiver) -> None:
    """With the queue full, more events are stored and answered 202 but not held in memory."""
    handoff = GatedHandoff()
    receiver = start_receiver(handoff, handoff_queue=4, max_handoffs=2)
    try:
        # Fill the queue, then warm up (allocator arenas, SQLite page cache) before measuring.
        assert set(_post_events(receiver, range(58))) == {202}
        wait_until(lambda: len(handoff.calls) == 2, what="two handoffs to start")
        gc.collect()
        before = _rss()

        statuses = _post_events(receiver, range(58, 158))

        gc.collect()
        grown = _rss() - before
    finally:
        handoff.gate.set()
    assert statuses == [202] * 100
    assert grown < 20 * MB, f"RSS grew by {grown / MB:.1f} MB"
    assert len(receiver.rows()) == 158
    wait_until(
        lambda: sum(row.outcome == "handled" for row in receiver.rows()) == 4,
        what="the queued handoffs to be recorded",
    )
    assert len(handoff.calls) == 4
    report = asyncio.run(replay_unhandled(receiver.engine, handoff, min_age=0, limit=200))
    assert report.handled == 154
    assert {row.outcome for row in receiver.rows()} == {"handled"}


@SQLITE
def test_sqlite_commits_reach_the_disk_before_they_return(engine: Engine) -> None:
    """The history's SQLite connections run synchronous=FULL, so a 202 survives a power cut."""
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2  # FULL
