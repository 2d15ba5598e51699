"""Benchmark 5: the cost of one watcher sweep at N = 10,000 channels, without Prefect's engine.

    python bench/bench_sweep_cost.py [--backend sqlite|postgresql|both] [--n 10000]
        [--page-size 100] [--changed 0.01] [--profile]

The sandbox on loopback holds N ``setting_up`` channels (plus 5 ``error``, 5 ``ready``). One sweep
is the work of ``flows/watch.py``'s first three tasks, called as plain functions in this process:

1. ``tracked``: the history's unsettled snapshots and active runs (what to look for);
2. ``read``: :func:`onboarding.hub.scan.read_partner_channels` (HTTP to the sandbox);
3. ``record``: every channel mapped to a snapshot (``tasks.sweep._snapshot``), then
   ``upsert_snapshots`` + ``record_transitions`` in one transaction;
4. ``plan``: what the history knows of every channel seen (active runs, latest finished runs),
   then :func:`onboarding.lifecycle.decide` on each channel's read (the reconciler's decisions,
   without carrying them out).

Sweep 1 sees every channel for the first time; before sweep 2, ``--changed`` of them turn
``ready``. Each sweep is run twice on a fresh database: once for wall and CPU time per phase,
once under ``tracemalloc`` for the peak Python allocation (the ``ru_maxrss`` growth of the
process is printed too). ``--profile`` prints a cProfile (CPU time, by own time) of the
timed sweep 1.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    Sandbox,
    machine,
    peak_rss_mb,
    postgres_database,
    serve_sandbox,
    sqlite_database,
)
from sqlalchemy import Engine

from onboarding.history import active_view
from onboarding.hub.scan import SweepRead, created_at, read_partner_channels
from onboarding.lifecycle import Action, History, Seen, decide
from onboarding.store import (
    active_runs,
    active_runs_of,
    latest_finished_states,
    make_engine,
    record_transitions,
    session_scope,
    unsettled_snapshots,
    upsert_snapshots,
)
from tasks.sweep import _snapshot

T = TypeVar("T")
EXTRA = 5
PHASES = ("tracked", "read", "record", "plan")


@dataclass
class SweepFigures:
    """Wall and CPU seconds per phase, and what the sweep did."""

    wall: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    seen: int = 0
    changes: int = 0
    to_start: int = 0


async def _timed(figures: SweepFigures, phase: str, action: Callable[[], Awaitable[T]]) -> T:
    wall, cpu = time.perf_counter(), time.process_time()
    result = await action()
    figures.wall[phase] = time.perf_counter() - wall
    figures.cpu[phase] = time.process_time() - cpu
    return result


async def sweep(engine: Engine, sandbox: Sandbox, page_size: int) -> SweepFigures:
    """One sweep's work, phase by phase, as ``flows/watch.py`` does it."""
    figures = SweepFigures()
    pid = sandbox.partner_id

    async def tracked() -> dict[str, datetime | None]:
        with session_scope(engine) as session:
            found: dict[str, datetime | None] = {
                snap.channel_id: snap.last_seen_at
                for snap in unsettled_snapshots(session, partner_id=pid)
            }
            for run in active_runs(session, partner_id=pid):
                found.setdefault(run.channel_id, None)
        return found

    async def read(watch: dict[str, datetime | None]) -> SweepRead:
        async with sandbox.hub(page_size=page_size) as hub:
            return await read_partner_channels(hub, tracked=watch, ready_since=datetime.now(UTC))

    async def record(seen: SweepRead) -> int:
        now = datetime.now(UTC)
        with session_scope(engine) as session:
            changes = upsert_snapshots(
                session,
                partner_id=pid,
                snapshots=[_snapshot(channel) for channel in seen.channels.values()],
                seen_at=now,
            )
            record_transitions(session, changes=changes, source="sweep", seen_at=now)
        return len(changes)

    async def plan(seen: SweepRead) -> int:
        ids = list(seen.channels)
        with session_scope(engine) as session:
            active = active_runs_of(session, channel_ids=ids)
            finished = latest_finished_states(session, channel_ids=ids)
        starts = 0
        for cid, channel in seen.channels.items():
            run = active.get(cid)
            history = History(
                active=active_view(run) if run else None,
                finished=finished.get(cid),
                installed_at=seen.started_at,
            )
            observation = Seen(channel.availability_status, created_at(channel))
            starts += sum(d.action is Action.OPEN for d in decide(observation, history))
        return starts

    watch = await _timed(figures, "tracked", tracked)
    seen = await _timed(figures, "read", lambda: read(watch))
    figures.changes = await _timed(figures, "record", lambda: record(seen))
    figures.to_start = await _timed(figures, "plan", lambda: plan(seen))
    figures.seen = len(seen.channels)
    return figures


def prepare(sandbox: Sandbox, n: int) -> list[str]:
    """A sandbox with ``n`` setting_up channels (and a few error and ready ones)."""
    sandbox.reset()
    ids = sandbox.bulk(n)
    sandbox.bulk(EXTRA, "error")
    sandbox.bulk(EXTRA, "ready")
    return ids


async def two_sweeps(
    database: Callable[[], AbstractContextManager[str]],
    sandbox: Sandbox,
    args: argparse.Namespace,
    measure_memory: bool,
) -> list[tuple[SweepFigures, float, float]]:
    """Sweep 1, change ``--changed`` of the channels, sweep 2: figures, tracemalloc MiB, RSS MiB."""
    ids = prepare(sandbox, args.n)
    results = []
    with database() as url:
        engine = make_engine(url)
        try:
            for number in (1, 2):
                if number == 2:
                    for channel_id in ids[:: max(round(1 / args.changed), 1)]:
                        sandbox.set_status(channel_id, "ready")
                rss = peak_rss_mb()
                if measure_memory:
                    tracemalloc.start()
                profile = args.profile and number == 1 and not measure_memory
                profiler = cProfile.Profile(time.process_time) if profile else None
                if profiler is not None:
                    profiler.enable()
                figures = await sweep(engine, sandbox, args.page_size)
                if profiler is not None:
                    profiler.disable()
                    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
                peak = 0.0
                if measure_memory:
                    peak = tracemalloc.get_traced_memory()[1] / 2**20
                    tracemalloc.stop()
                results.append((figures, peak, peak_rss_mb() - rss))
        finally:
            engine.dispose()
    return results


def row(backend: str, number: int, figures: SweepFigures, peak: float, rss: float) -> str:
    """One table row: wall (cpu) per phase, total, memory."""
    cells = " ".join(f"{figures.wall[p]:>6.3f}({figures.cpu[p]:>5.2f})" for p in PHASES)
    total = sum(figures.wall.values())
    cpu = sum(figures.cpu.values())
    return (
        f"{backend:<10} {number:>5} {figures.seen:>6,} {figures.changes:>7,} {cells}"
        f" {total:>6.3f}({cpu:>5.2f}) {peak:>7.1f} {rss:>7.1f}"
    )


async def run(args: argparse.Namespace) -> None:
    """Every chosen backend, then the table."""
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    databases = {"sqlite": sqlite_database, "postgresql": postgres_database}
    print(f"# {machine()}; N={args.n:,}, page size {args.page_size}, changed {args.changed:.0%}")
    print("# seconds: wall(cpu) per phase; memory MiB: tracemalloc peak, ru_maxrss growth")
    head = " ".join(f"{p:>13}" for p in PHASES)
    print(
        f"{'backend':<10} {'sweep':>5} {'seen':>6} {'changes':>7} {head} {'total':>13}"
        f" {'py_peak':>7} {'rss_up':>7}"
    )
    with serve_sandbox() as sandbox:
        for backend in backends:
            timed = await two_sweeps(databases[backend], sandbox, args, measure_memory=False)
            traced = await two_sweeps(databases[backend], sandbox, args, measure_memory=True)
            for number, ((figures, _, _), (_, peak, rss)) in enumerate(
                zip(timed, traced, strict=True), start=1
            ):
                print(row(backend, number, figures, peak, rss), flush=True)


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--n", type=int, default=10_000, help="setting_up channels")
    parser.add_argument(
        "--page-size", type=int, default=100, help="list page size (D360_PAGE_SIZE)"
    )
    parser.add_argument("--changed", type=float, default=0.01, help="share ready before sweep 2")
    parser.add_argument("--profile", action="store_true", help="cProfile the timed sweep 1")
    args: Any = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
