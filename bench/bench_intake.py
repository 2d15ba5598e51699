"""Benchmark 4: webhook intake, paced and in a burst, on SQLite and on PostgreSQL.

    python bench/bench_intake.py [--backend sqlite|postgresql|both] [--n 1000] [--rate 100]
        [--burst 500] [--dup-share 0.1] [--handoff-ms 20] [--handoff-queue 64] [--writes 1000]

The receiver (``onboarding.receiver.create_app``) is served by uvicorn on loopback
(``serve_config``) over a freshly migrated history database. Its handoff stands for the Prefect
call: it records the event and returns ``handled`` after an awaited ``--handoff-ms`` delay.

1. ``paced``: ``--n`` distinct ``channel_created`` webhooks at ``--rate`` per second, open loop
   (each send is scheduled at a fixed time and does not wait for earlier answers), with
   ``--dup-share`` of them delivered a second time at a random later slot;
2. ``burst``: ``--burst`` distinct webhooks (and ``--dup-share`` of them again) all at once.

The sender is a child process (``--connections`` keep-alive connections), so it does not compete
with the receiver for this process's GIL. Latency is measured from each send's scheduled time to
its answer. Printed per phase: answers by
status, p50/p95/p99/max latency; then, once the handoffs settled: inbox rows against distinct
bodies (nothing lost), and handoff calls per distinct event (exactly once each).

3. ``write cost`` (SQLite only): ``--writes`` inbox writes one after another through the
   receiver's own store path, alternating ``synchronous=FULL`` (what the history runs, so a
   ``202`` survives a power cut) and ``NORMAL`` (what it ran before) in rounds on the same file,
   so a busy machine's noise falls on both alike. Printed: wall p50/p99 per write and CPU per write.

The receiver holds at most ``--handoff-queue`` handoffs (``ONBOARDING_HANDOFF_QUEUE``); events
beyond that are stored, answered 202 and left ``accepted``. Once the live handoffs are done the
script hands those on with :func:`~onboarding.receiver.replay_unhandled`, as the watcher would,
and prints how many went that way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from _common import (
    free_port,
    machine,
    percentile,
    postgres_database,
    serve_config_in_thread,
    sqlite_database,
)
from pydantic import SecretStr
from sqlalchemy import Engine, event, func
from sqlmodel import select

from onboarding.receiver import HandoffEvent, create_app, replay_unhandled, serve_config
from onboarding.receiver.handling import store
from onboarding.store import EventOutcome, InboundEvent, make_engine, session_scope

TOKEN = "bench-token-5Jd8Wq2Rx7"


@dataclass
class RecordingHandoff:
    """Stands for the Prefect call: waits ``delay`` seconds, counts the event, says handled."""

    delay: float
    calls: Counter[str] = field(default_factory=Counter)
    running: int = 0

    async def __call__(self, event: HandoffEvent) -> str:
        """Record ``event`` once its simulated Prefect call returns."""
        self.running += 1
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.running -= 1
        self.calls[event.channel_id or "?"] += 1
        return "handled"


@dataclass
class Phase:
    """What one phase sent and got back."""

    name: str
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0


def body(channel_id: str) -> bytes:
    """A ``channel_created`` webhook for ``channel_id``, shaped like the Partner API's channel."""
    data = {
        "id": channel_id,
        "client_id": "cl-" + channel_id,
        "partner_id": "bench-partner",
        "status": "created",
        "availability_status": "setting_up",
        "created_at": "2026-11-25T10:00:00Z",
        "modified_at": "2026-11-25T10:00:00Z",
        "setup_info": {"phone_number": "+4915100000000", "phone_name": "Bench", "error": None},
        "waba_account": {"id": "waba-" + channel_id, "fb_account_status": "pending_approval"},
        "client": {"id": "cl-" + channel_id, "name": "Bench client", "contact_info": {}},
    }
    return json.dumps({"event": "channel_created", "data": data}).encode()


def schedule(ids: list[str], dup_share: float, rng: random.Random) -> list[str]:
    """The send order: every id once, and ``dup_share`` of them again at a later slot."""
    order = list(ids)
    for channel_id in rng.sample(ids, round(len(ids) * dup_share)):
        first = order.index(channel_id)
        order.insert(rng.randint(first + 1, len(order)), channel_id)
    return order


async def send_all(
    http: httpx.AsyncClient, url: str, order: list[str], interval: float, phase: Phase
) -> None:
    """Send ``order`` open-loop, one every ``interval`` seconds (0: all at once)."""
    bodies = {channel_id: body(channel_id) for channel_id in order}
    headers = {"Content-Type": "application/json"}
    start = time.perf_counter()

    async def send(index: int, channel_id: str) -> None:
        due = start + index * interval
        await asyncio.sleep(max(due - time.perf_counter(), 0))
        try:
            response = await http.post(url, content=bodies[channel_id], headers=headers)
            phase.statuses[str(response.status_code)] += 1
        except httpx.HTTPError as error:
            phase.statuses[type(error).__name__] += 1
        phase.latencies.append(time.perf_counter() - due)

    await asyncio.gather(*(send(i, cid) for i, cid in enumerate(order)))
    phase.seconds = time.perf_counter() - start


async def client_phase(args: argparse.Namespace) -> None:
    """``--client`` mode: send one phase to ``--client`` (a hook URL), print the figures as JSON."""
    ids = [f"CH-{args.phase_name[0].upper()}{i:05d}" for i in range(args.n)]
    order = schedule(ids, args.dup_share, random.Random(args.seed))
    limits = httpx.Limits(
        max_connections=args.connections, max_keepalive_connections=args.connections
    )
    phase = Phase(args.phase_name)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await send_all(http, args.client, order, 1 / args.rate if args.rate else 0.0, phase)
    figures = {"statuses": phase.statuses, "latencies": phase.latencies, "seconds": phase.seconds}
    print(json.dumps(figures))


def send_phase(hook: str, name: str, n: int, rate: float, args: argparse.Namespace) -> Phase:
    """Run one phase's sender in a child process (so it does not share this one's GIL)."""
    command = [
        sys.executable,
        __file__,
        f"--client={hook}",
        f"--phase-name={name}",
        f"--n={n}",
        f"--rate={rate}",
        f"--dup-share={args.dup_share}",
        f"--connections={args.connections}",
        f"--seed={len(name)}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    figures = json.loads(done.stdout)
    return Phase(name, Counter(figures["statuses"]), figures["latencies"], figures["seconds"])


def inbox_counts(engine: Engine) -> Counter[str]:
    """Inbox rows by outcome."""
    with session_scope(engine) as session:
        statement = select(InboundEvent.outcome, func.count()).group_by(InboundEvent.outcome)
        return Counter({outcome: count for outcome, count in session.exec(statement)})


async def settle(
    engine: Engine, handoff: RecordingHandoff, within: float = 60
) -> tuple[Counter[str], int]:
    """Wait for the live handoffs, replay what the queue left; the counts and how many replayed."""
    deadline = time.monotonic() + within
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 1.0 and time.monotonic() < deadline:
        if handoff.running:
            quiet_since = time.monotonic()
        await asyncio.sleep(0.05)
    replayed = 0
    while True:
        counts = inbox_counts(engine)
        if not counts[EventOutcome.ACCEPTED] or time.monotonic() > deadline:
            return counts, replayed
        report = await replay_unhandled(
            engine, handoff, min_age=0, max_attempts=10, retention_days=30, limit=500
        )
        replayed += report.handled


def print_phase(backend: str, phase: Phase, sent: int) -> None:
    """One table row."""
    ms = [value * 1000 for value in phase.latencies]
    statuses = " ".join(f"{status}:{count}" for status, count in sorted(phase.statuses.items()))
    print(
        f"{backend:<10} {phase.name:<6} {sent:>5} {phase.seconds:>6.1f} {statuses:<12}"
        f" {percentile(ms, 50):>7.1f} {percentile(ms, 95):>7.1f} {percentile(ms, 99):>7.1f}"
        f" {max(ms):>7.1f}",
        flush=True,
    )


async def run_backend(backend: str, url: str, args: argparse.Namespace) -> None:
    """Both phases against a receiver on ``url``, then the inbox and handoff checks."""
    engine = make_engine(url)
    handoff = RecordingHandoff(delay=args.handoff_ms / 1000)
    app = create_app(
        engine=engine, token=SecretStr(TOKEN), handoff=handoff, handoff_queue=args.handoff_queue
    )
    config = serve_config(app, "127.0.0.1", free_port(), log_level="warning")
    try:
        with serve_config_in_thread(config) as base:
            hook = f"{base}/hooks/360dialog/{TOKEN}"
            for name, n, rate in (("paced", args.n, args.rate), ("burst", args.burst, 0.0)):
                phase = await asyncio.to_thread(send_phase, hook, name, n, rate, args)
                print_phase(backend, phase, sum(phase.statuses.values()))
            counts, replayed = await settle(engine, handoff)
    finally:
        engine.dispose()
    distinct = args.n + args.burst
    rows = sum(counts.values())
    calls = handoff.calls
    once = sum(1 for count in calls.values() if count == 1)
    print(
        f"{backend:<10} inbox rows {rows:,} for {distinct:,} distinct bodies"
        f" (lost {distinct - rows}); outcomes {dict(counts)};"
        f" handed on exactly once: {once:,}/{distinct:,}, more than once:"
        f" {sum(1 for count in calls.values() if count > 1)}; left to the replay by the full"
        f" handoff queue: {replayed:,}",
        flush=True,
    )


def _timed_writes(engine: Engine, label: str, count: int) -> tuple[list[float], float]:
    """``count`` sequential inbox writes; their wall seconds each and the CPU seconds in all."""
    walls: list[float] = []
    cpu = time.process_time()
    for n in range(count):
        body = json.dumps({"event": "channel_created", "data": {"id": f"{label}-{n}"}}).encode()
        start = time.perf_counter()
        store(engine, dedup_key=f"cost:{label}:{n}", body=body, headers={})
        walls.append(time.perf_counter() - start)
    return walls, time.process_time() - cpu


def write_cost(url: str, writes: int, rounds: int = 4) -> None:
    """Inbox write cost with synchronous=FULL against NORMAL, in alternating rounds."""
    full = make_engine(url)
    normal = make_engine(url)

    @event.listens_for(normal, "connect")
    def _normal(dbapi_conn: Any, _record: Any) -> None:  # runs after make_engine's FULL
        dbapi_conn.execute("PRAGMA synchronous = NORMAL")

    figures: dict[str, tuple[list[float], float]] = {"FULL": ([], 0.0), "NORMAL": ([], 0.0)}
    try:
        for round_ in range(rounds):
            for name, engine in (("FULL", full), ("NORMAL", normal)):
                walls, cpu = _timed_writes(engine, f"{name}{round_}", writes // rounds)
                figures[name] = (figures[name][0] + walls, figures[name][1] + cpu)
    finally:
        full.dispose()
        normal.dispose()
    for name, (walls, cpu) in figures.items():
        ms = [wall * 1000 for wall in walls]
        print(
            f"sqlite     write cost synchronous={name:<6} {len(ms)} writes:"
            f" p50 {percentile(ms, 50):.2f} ms, p99 {percentile(ms, 99):.2f} ms,"
            f" CPU {cpu * 1000 / len(ms):.2f} ms/write",
            flush=True,
        )


@contextlib.contextmanager
def database(backend: str) -> Iterator[str]:
    """A throwaway migrated database for ``backend``."""
    with sqlite_database() if backend == "sqlite" else postgres_database() as url:
        yield url


async def run(args: argparse.Namespace) -> None:
    """Every chosen backend."""
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    print(
        f"# {machine()}; handoff {args.handoff_ms:g} ms, queue {args.handoff_queue};"
        f" sender connections {args.connections}; latency from scheduled send time"
    )
    print(
        f"{'backend':<10} {'phase':<6} {'sent':>5} {'secs':>6} {'answers':<12}"
        f" {'p50_ms':>7} {'p95_ms':>7} {'p99_ms':>7} {'max_ms':>7}"
    )
    for backend in backends:
        with database(backend) as url:
            await run_backend(backend, url, args)
            if backend == "sqlite" and args.writes:
                write_cost(url, args.writes)


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--n", type=int, default=1_000, help="distinct webhooks, paced")
    parser.add_argument("--rate", type=float, default=100.0, help="paced sends per second")
    parser.add_argument("--burst", type=int, default=500, help="distinct webhooks sent at once")
    parser.add_argument("--dup-share", type=float, default=0.1, help="share delivered twice")
    parser.add_argument("--connections", type=int, default=100, help="sender's connections")
    parser.add_argument("--handoff-ms", type=float, default=20.0, help="simulated Prefect call")
    parser.add_argument("--handoff-queue", type=int, default=64, help="handoffs held in memory")
    parser.add_argument("--writes", type=int, default=1_000, help="timed writes (0: skip)")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # internal: the sender process
    parser.add_argument("--phase-name", default="paced", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(client_phase(args) if args.client else run(args))


if __name__ == "__main__":
    main()
