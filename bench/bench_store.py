"""Benchmark the watcher's write path: bulk snapshot upserts and recording a sweep's transitions.

    python bench/bench_store.py [--backend sqlite|postgresql|both] [--n 10000] [--transitions 1000]

Each backend gets a throwaway database (a temp SQLite file; a fresh PostgreSQL database at
``ONBOARDING_TEST_POSTGRES_URL``, dropped afterwards), migrated to head. Per repeat:

1. ``insert``: upsert N snapshots nobody has seen (the first sweep);
2. ``sweep``: upsert the same N with ``--transitions`` of them changed, then record those
   transitions as status observations (a steady-state sweep); commit included in each figure.

Target: the N = 10,000 upsert under 1 s on either backend. ``--profile`` prints the top of a
cProfile of one sweep.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import postgres_database, sqlite_database
from sqlalchemy import Engine
from sqlmodel import SQLModel

from onboarding.store import (
    SnapshotChange,
    SnapshotIn,
    make_engine,
    record_transitions,
    session_scope,
    upsert_snapshots,
)

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
T = TypeVar("T")


def snapshots(n: int, changed: int = 0) -> list[SnapshotIn]:
    """N channels in ``setting_up``; the first ``changed`` of them (spread out) now ``ready``."""
    step = max(n // changed, 1) if changed else 0
    moved = {i * step for i in range(changed)} if changed else set()
    return [
        SnapshotIn(
            channel_id=f"ch-{i:06d}",
            client_id=f"cl-{i:06d}",
            availability_status="ready" if i in moved else "setting_up",
            status="ready" if i in moved else "pending",
            phone_number=f"+49151{i:07d}",
            client_name=f"Client {i}",
            modified_at=T0,
        )
        for i in range(n)
    ]


def empty(engine: Engine) -> None:
    """Delete every row, so each repeat starts from nothing."""
    with engine.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(table.delete())


def upsert(engine: Engine, batch: list[SnapshotIn], seen_at: datetime) -> list[SnapshotChange]:
    """One committed bulk upsert."""
    with session_scope(engine) as session:
        return upsert_snapshots(session, partner_id="p", snapshots=batch, seen_at=seen_at)


def record(engine: Engine, changes: list[SnapshotChange], seen_at: datetime) -> int:
    """One committed recording of a sweep's transitions."""
    with session_scope(engine) as session:
        return record_transitions(session, changes=changes, source="sweep", seen_at=seen_at)


def timed(action: Callable[..., T], *args: object) -> tuple[float, T]:
    """Seconds ``action(*args)`` took, and its result."""
    start = time.perf_counter()
    result = action(*args)
    return time.perf_counter() - start, result


def run_backend(
    url: str, n: int, transitions: int, repeats: int, profile: bool
) -> dict[str, list[float]]:
    """Measure ``repeats`` rounds of insert + sweep on ``url``."""
    engine = make_engine(url)
    figures: dict[str, list[float]] = {"insert": [], "sweep upsert": [], "transitions": []}
    first, second = snapshots(n), snapshots(n, transitions)
    later = T0 + timedelta(minutes=1)
    try:
        for _ in range(repeats):
            empty(engine)
            figures["insert"].append(timed(upsert, engine, first, T0)[0])
            seconds, changes = timed(upsert, engine, second, later)
            figures["sweep upsert"].append(seconds)
            assert len(changes) == transitions, (len(changes), transitions)
            seconds, added = timed(record, engine, changes, later)
            figures["transitions"].append(seconds)
            assert added == transitions, (added, transitions)
        if profile:
            empty(engine)
            upsert(engine, first, T0)
            profiler = cProfile.Profile()
            changes = profiler.runcall(upsert, engine, second, later)
            profiler.runcall(record, engine, changes, later)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    finally:
        engine.dispose()
    return figures


def main() -> None:
    """Parse the arguments, run the chosen backends, print the table of figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--n", type=int, default=10_000, help="channel snapshots per upsert")
    parser.add_argument("--transitions", type=int, default=1_000, help="channels changed per sweep")
    parser.add_argument("--repeats", type=int, default=5, help="rounds per backend")
    parser.add_argument("--profile", action="store_true", help="cProfile one sweep per backend")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    databases = {"sqlite": sqlite_database, "postgresql": postgres_database}
    print(f"n={args.n} transitions={args.transitions} repeats={args.repeats} (best / median, s)")
    print(f"{'backend':<11} {'step':<34} {'best':>7} {'median':>7}")
    for backend in backends:
        with databases[backend]() as url:
            figures = run_backend(url, args.n, args.transitions, args.repeats, args.profile)
        labels = {
            "insert": f"upsert {args.n:,} new snapshots",
            "sweep upsert": f"upsert {args.n:,} ({args.transitions:,} changed)",
            "transitions": f"record {args.transitions:,} transitions",
        }
        for key, label in labels.items():
            values = figures[key]
            print(
                f"{backend:<11} {label:<34} {min(values):>7.3f} {statistics.median(values):>7.3f}"
            )
        sweep = [
            a + b for a, b in zip(figures["sweep upsert"], figures["transitions"], strict=True)
        ]
        label = "whole sweep (upsert + transitions)"
        print(f"{backend:<11} {label:<34} {min(sweep):>7.3f} {statistics.median(sweep):>7.3f}")


if __name__ == "__main__":
    main()
