"""Waiting costs nothing; a settled channel is noticed fast; a backlog is absorbed.

    python bench/bench_waiting.py [--n 1000] [--backend sqlite|postgresql] [--sweep-every 15]

Runs the product as deployed, every part a real process on loopback: a Prefect server
(`prefect server start`, on SQLite or PostgreSQL), prefect.yaml deployed and `onboarding` workers
(`prefect worker start --type onboarding`),
the Partner API sandbox, and the history (SQLite file or PostgreSQL database). Then:

1. **backlog**: N channels appear in the sandbox, all ``setting_up``, with their webhooks lost; one
   sweep (``watch-channels`` run in-process) finds them: time until every one has a history row,
   and until every one has its parked onboarding flow run (visible in the UI, holding no process);
2. **waiting**: with the N runs parked, sample for ``--idle`` seconds: processes of the product,
   their total RSS, the Prefect server's CPU (% of one core);
3. **webhooks** (``--webhooks K``, 60 by default): K more channels are created with their
   ``channel_created`` webhooks delivered to the receiver (``onboarding receiver``, a process of
   its own), then turn ``ready`` one per second, each with its ``channel_ready`` webhook: latency
   from each flip to the partner's callback arriving (p50/p95), with all N parked beside them;
4. **detection**: with all N waiting, ``--detect-sample`` of them turn ``ready`` one at a time at
   random moments over ``--detect-window`` s, while sweeps run every ``--sweep-every`` s (start to
   start): latency from each flip to the history recording ``ready`` and to the run finishing
   (p50/p95), without a queue of runs waiting for a process slot;
5. **settling**: all the others turn ``ready`` at once: the same latencies, the time until all
   completed, where the CPU went, the product's peak RSS while runs execute, and executions per
   onboarding (all N).

Every onboarding creates its channel's key and delivers it to a partner callback served by this
script, as in production.

Figures are printed; nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get(
    "ONBOARDING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


def pg_database(name: str, *, drop: bool = False) -> str:
    from sqlalchemy import create_engine, make_url, text

    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if drop:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                {"d": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        else:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


def proc_tree(root: int) -> list[int]:
    """``root`` and every descendant, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def rss_by_process(procs: dict[str, subprocess.Popen[bytes]]) -> str:
    """``name MB`` for each of the product's processes (their children included)."""
    return ", ".join(
        f"{name} {rss_mb(proc_tree(proc.pid)):.0f} MB"
        for name, proc in procs.items()
        if name != "sandbox"
    )


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(field) for field in fields[11:15])  # + reaped children
        except (OSError, IndexError, ValueError):
            pass
    return total / ticks


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far, from /proc/stat, in ticks."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def server_settings(base: dict[str, str], overrides: list[str]) -> dict[str, str]:
    """``base`` with each ``NAME=VALUE`` of ``overrides`` applied (``NAME=`` drops NAME)."""
    settings = dict(base)
    for override in overrides:
        name, _, value = override.partition("=")
        if value:
            settings[name] = value
        else:
            settings.pop(name, None)
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sweep-every", type=float, default=15.0)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--max-running", type=int, default=8)
    parser.add_argument(
        "--executors", type=int, default=1, help="`onboarding` worker processes to start"
    )
    parser.add_argument("--wake-limit", type=int, default=None, help="ONBOARDING_WAKE_LIMIT")
    parser.add_argument(
        "--poll", type=float, default=0.5, help="ONBOARDING_EXECUTOR_POLL (the worker's query)"
    )
    parser.add_argument("--webhooks", type=int, default=60, help="channels paced 1/s (0: skip)")
    parser.add_argument("--skip-settling", action="store_true")
    parser.add_argument(
        "--detect-sample", type=int, default=60, help="channels turned ready one at a time"
    )
    parser.add_argument(
        "--detect-window", type=float, default=240.0, help="seconds the sample's flips span"
    )
    parser.add_argument(
        "--cluster",
        type=int,
        default=0,
        metavar="API_PROCESSES",
        help="start Prefect as deployments/scale does (PostgreSQL, Redis, this many API "
        "processes and one services process; workers spread over the API processes)",
    )
    parser.add_argument(
        "--worker-type",
        choices=["onboarding", "process"],
        default="onboarding",
        help="the workers' type: ours (runs in-process) or Prefect's process worker (a process "
        "per run), on the same pool and flows",
    )
    parser.add_argument(
        "--no-pool-limit",
        action="store_true",
        help="leave the work pool without the concurrency limit `onboarding up` sets",
    )
    parser.add_argument(
        "--no-automations",
        action="store_true",
        help="delete the automations prefect.yaml's triggers create (to measure what "
        "evaluating every event against them costs the server)",
    )
    parser.add_argument(
        "--untuned",
        action="store_true",
        help="start Prefect's server without the settings `onboarding up` gives it",
    )
    parser.add_argument(
        "--server-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a Prefect server setting over `up`'s (NAME= drops one of `up`'s): to measure each",
    )
    parser.add_argument(
        "--migrate-on-start",
        action="store_true",
        help="let the Prefect server migrate its database as it starts (before 2026-12-06 `up` "
        "did; now it migrates first, in a process of its own)",
    )
    parser.add_argument(
        "--count-requests",
        action="store_true",
        help="log the Prefect server's HTTP requests (uvicorn's access log) and print them per "
        "onboarding, by route (the log costs the server some CPU: measure CPU without it)",
    )
    args = parser.parse_args()
    if args.cluster and args.backend != "postgresql":
        parser.error("--cluster runs Prefect on PostgreSQL: add --backend postgresql")
    if args.cluster and args.count_requests:
        parser.error("--count-requests reads one server's log: leave out --cluster")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on kill too
    work = Path(tempfile.mkdtemp(prefix="bench-waiting-"))
    tag = secrets.token_hex(4)
    api_port, sandbox_port, receiver_port = free_port(), free_port(), free_port()
    callbacks = CallbackSink()
    api = f"http://127.0.0.1:{api_port}/api"
    env = dict(os.environ)
    for name in list(env):
        if name.startswith(("D360_", "ONBOARDING_", "PREFECT_")):
            env.pop(name)
    env.update(
        PREFECT_HOME=str(work / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_URL=api,
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    databases: list[str] = []
    if args.backend == "postgresql":
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = pg_database(f"bench_prefect_{tag}").replace(
            "postgresql+psycopg", "postgresql+asyncpg"
        )
        history = pg_database(f"bench_history_{tag}")
        databases += [f"bench_prefect_{tag}", f"bench_history_{tag}"]
    else:
        history = f"sqlite:///{work / 'history.db'}"
    env.update(
        D360_HUB_URL=f"http://127.0.0.1:{sandbox_port}/api/v2",
        D360_PARTNER_ID="sandbox-partner",
        D360_API_KEY="sandbox-key",
        D360_PAGE_SIZE="1000",
        ONBOARDING_DATABASE_URL=history,
        ONBOARDING_SWEEP_INTERVAL="3600",  # this script sweeps itself, on its own clock
        ONBOARDING_MAX_RUNNING=str(args.max_running),
        ONBOARDING_EXECUTOR_POLL=str(args.poll),
        PREFECT_WORKER_QUERY_SECONDS=str(args.poll),
        ONBOARDING_WEBHOOK_TOKEN=WEBHOOK_TOKEN,
        ONBOARDING_CALLBACK_URL=f"{callbacks.url}/callback",
        ONBOARDING_CALLBACK_SECRET="bench-callback-secret",
    )
    if args.wake_limit:
        env["ONBOARDING_WAKE_LIMIT"] = str(args.wake_limit)
    os.environ.update(env)
    logs = work / "logs"
    logs.mkdir()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stack = contextlib.ExitStack()

    def start(name: str, *cmd: str, more: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (logs / f"{name}.log").open("wb") as log:
            procs[name] = subprocess.Popen(
                cmd,
                env={**env, **(more or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        return procs[name]

    try:
        from onboarding.launcher.deploy import apply_deployments, worker_command
        from onboarding.launcher.prefect_server import (
            MIGRATE_ON_START,
            SERVER_TUNING,
            migrate_database,
        )
        from onboarding.store import upgrade

        upgrade(history)
        if args.cluster:
            api_urls = start_cluster(args.cluster, env, procs, logs, stack)
        else:
            api_urls = [api]
            migrated = {}
            if not args.migrate_on_start:  # as `up` does
                asyncio.run(migrate_database(env, logs / "migrate.log"))
                migrated = {MIGRATE_ON_START: "false"}
            start(
                "prefect",
                *(sys.executable, "-m", "prefect", "server", "start"),
                *("--host", "127.0.0.1", "--port", str(api_port)),
                more=server_settings({} if args.untuned else SERVER_TUNING, args.server_setting)
                | migrated
                | ({"PREFECT_SERVER_LOGGING_LEVEL": "INFO"} if args.count_requests else {}),
            )
        start(
            "sandbox",
            sys.executable,
            "-m",
            "onboarding.cli",
            "sandbox",
            "--port",
            str(sandbox_port),
        )
        start(
            "receiver",
            sys.executable,
            "-m",
            "onboarding.cli",
            "receiver",
            "--host",
            "127.0.0.1",
            "--port",
            str(receiver_port),
        )
        wait_http(f"{api_urls[0]}/health")
        wait_http(f"http://127.0.0.1:{sandbox_port}/sandbox/healthz")
        wait_http(f"http://127.0.0.1:{receiver_port}/healthz")
        asyncio.run(
            apply_deployments(
                env=env,
                sweep_interval=3600,
                log_path=logs / "deploy.log",
                concurrency_limit=None if args.no_pool_limit else args.max_running + 1,
            )
        )
        if args.no_automations:
            asyncio.run(delete_automations())
        for index in range(1, args.executors + 1):
            start(
                f"serve{index}",  # the names the figures below look for
                sys.executable,
                *worker_command(limit=args.max_running + 1, worker_type=args.worker_type),
                more={"PREFECT_API_URL": api_urls[(index - 1) % len(api_urls)]},
            )
        hook = f"http://127.0.0.1:{receiver_port}/hooks/360dialog/{WEBHOOK_TOKEN}"
        requests = RequestLog(logs / "prefect.log") if args.count_requests else None
        run_bench(args, env, procs, history, sandbox_port, hook, callbacks, requests)
        print(f"\nlogs: {logs}")
    finally:
        for proc in reversed(procs.values()):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        stack.close()
        for name in databases:
            pg_database(name, drop=True)
        callbacks.close()


WEBHOOK_TOKEN = "bench-webhook-token-" + secrets.token_hex(8)
CLUSTER_REDIS_DB = 15  # flushed before and after a --cluster run


def start_cluster(
    api_processes: int,
    env: dict[str, str],
    procs: dict[str, subprocess.Popen[bytes]],
    logs: Path,
    stack: contextlib.ExitStack,
) -> list[str]:
    """Prefect as deployments/scale runs it (PostgreSQL, Redis, ``api_processes`` API processes,
    one services process); its processes join ``procs`` as ``prefect-*``. Returns the API URLs."""
    import redis

    from deployments.scale.cluster import Cluster, ClusterSpec

    scratch = redis.Redis(host="127.0.0.1", port=6379, db=CLUSTER_REDIS_DB)
    scratch.flushdb()
    stack.callback(scratch.flushdb)
    spec = ClusterSpec(
        prefect_db_url=env["PREFECT_SERVER_DATABASE_CONNECTION_URL"],
        redis_db=CLUSTER_REDIS_DB,
        api_ports=[free_port() for _ in range(api_processes)],
        workers=0,
        register=False,
        log_dir=logs / "cluster",
    )
    cluster = stack.enter_context(Cluster(spec))
    procs.update({f"prefect-{name}": proc for name, proc in cluster.processes.items()})
    env.update(PREFECT_API_URL=spec.api_urls[0], PREFECT_API_AUTH_STRING=spec.auth_string)
    os.environ.update(PREFECT_API_URL=spec.api_urls[0], PREFECT_API_AUTH_STRING=spec.auth_string)
    return spec.api_urls


class CallbackSink:
    """The partner's completion callback, served in this process: when each channel's arrived."""

    def __init__(self) -> None:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        from tests.servers import serve_in_thread

        self.arrived: dict[str, float] = {}

        async def callback(request: Request) -> Response:
            import json

            body = json.loads(await request.body())
            self.arrived.setdefault(body["channel_id"], time.time())
            return Response(status_code=204)

        app = Starlette(routes=[Route("/callback", callback, methods=["POST"])])
        self._stack = contextlib.ExitStack()
        self.url = self._stack.enter_context(serve_in_thread(app))

    def close(self) -> None:
        self._stack.close()


class RssPeak:
    """Samples the product's RSS every second in a thread; ``peak`` is the largest seen."""

    def __init__(self, pids: list[int]) -> None:
        self.pids, self.peak = pids, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            self.peak = max(self.peak, rss_mb([p for root in self.pids for p in proc_tree(root)]))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


async def delete_automations() -> None:
    """Delete every automation on the server (prefect.yaml's trigger creates one)."""
    from prefect import get_client

    async with get_client() as client:
        for automation in await client.read_automations():
            await client.delete_automation(automation.id)
            print(f"deleted automation {automation.name!r}")


PREFECT_TABLES = {
    "flow runs": "flow_run",
    "flow-run states": "flow_run_state",
    "task runs": "task_run",
    "task-run states": "task_run_state",
    "artifacts": "artifact",
    "events": "events",
    "log lines": "log",
}


def prefect_rows(env: dict[str, str], n: int) -> str:
    """What the onboardings cost Prefect's database: rows per onboarding, from its own tables."""
    from sqlalchemy import create_engine, text

    url = env.get("PREFECT_SERVER_DATABASE_CONNECTION_URL") or (
        f"sqlite:///{env['PREFECT_HOME']}/prefect.db"
    )
    engine = create_engine(url.replace("postgresql+asyncpg", "postgresql+psycopg"))
    counts = []
    with engine.connect() as connection:
        for label, table in PREFECT_TABLES.items():
            try:
                rows = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
            except Exception:  # a table another Prefect version names differently
                counts.append(f"{label} n/a")
                continue
            counts.append(f"{label} {rows / n:.1f}")
        details = [
            f"{label} by name: {by_name(connection, table, column, n)}"
            for label, (table, column) in BROKEN_DOWN.items()
        ]
    engine.dispose()
    return "\n    ".join([", ".join(counts), *details])


BROKEN_DOWN = {
    "flow-run states": ("flow_run_state", "name"),
    "task-run states": ("task_run_state", "name"),
    "events": ("events", "event"),
}


def by_name(connection: Any, table: str, column: str, n: int) -> str:
    """Rows of ``table`` per onboarding, by ``column``, most first."""
    from sqlalchemy import text

    try:
        rows = connection.execute(
            text(f"SELECT {column}, count(*) FROM {table} GROUP BY {column} ORDER BY 2 DESC")  # noqa: S608
        ).all()
    except Exception:  # a column another Prefect version names differently
        return "n/a"
    return ", ".join(f"{name} {count / n:.2f}" for name, count in rows)


class RequestLog:
    """The Prefect server's HTTP requests, read from uvicorn's access log lines in its log file.

    ``mark()`` notes where the log is; ``since(mark, per)`` counts the requests after it, per
    onboarding: writes (POST, PATCH, PUT, DELETE, except the POSTs Prefect's API uses for
    queries), reads (GET and the query POSTs), and the routes most asked, ids elided.
    """

    LINE = re.compile(r'"(GET|POST|PATCH|PUT|DELETE) (\S+) HTTP/[\d.]+" (\d{3})')
    ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    QUERIES = ("/filter", "/count", "/paginate", "/history", "/get_scheduled_flow_runs")

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        """Where the log ends now."""
        return self.path.stat().st_size

    def since(self, mark: int, per: float) -> str:
        """The requests logged after ``mark``, per onboarding (``per`` of them)."""
        with self.path.open("rb") as log:
            log.seek(mark)
            text = log.read().decode("utf-8", "replace")
        routes: dict[str, int] = {}
        writes = reads = 0
        for method, path, _status in self.LINE.findall(text):
            route = self.ID.sub("{id}", path.split("?", 1)[0])
            routes[f"{method} {route}"] = routes.get(f"{method} {route}", 0) + 1
            if method == "GET" or route.endswith(self.QUERIES):
                reads += 1
            else:
                writes += 1
        top = sorted(routes.items(), key=lambda item: -item[1])[:12]
        return f"writes {writes / per:.2f}, reads {reads / per:.2f}; by route: " + ", ".join(
            f"{route} {count / per:.2f}" for route, count in top
        )


def run_bench(args, env, procs, history, sandbox_port, hook, callbacks, requests) -> None:
    import httpx
    from sqlalchemy import func
    from sqlmodel import select

    from flows.watch import watch_channels
    from onboarding.store import OnboardingRun, make_engine, session_scope

    control = httpx.Client(
        base_url=f"http://127.0.0.1:{sandbox_port}/sandbox",
        headers={"X-Sandbox-Admin-Key": "sandbox-admin"},
        timeout=120,
    )
    engine = make_engine(history)

    def count(*where) -> int:
        with session_scope(engine) as session:
            return session.exec(select(func.count()).select_from(OnboardingRun).where(*where)).one()

    n = args.n
    ids = control.post("/channels/bulk", json={"count": n, "send_webhook": False}).json()["ids"]
    print(
        f"== backend {args.backend}, N = {n:,} setting_up channels, webhooks lost; "
        f"flow runs executed by {args.executors} `{args.worker_type}` worker(s)",
        flush=True,
    )
    if args.untuned or args.server_setting:
        print(f"  server settings over up's: untuned={args.untuned} {args.server_setting}")

    tracked_at = watch_count(lambda: count(OnboardingRun.channel_id.in_(ids)), n)  # type: ignore[attr-defined]
    backlog_mark = requests.mark() if requests else 0
    t0 = time.monotonic()
    summary = asyncio.run(watch_channels())
    sweep_s = time.monotonic() - t0
    parked = count(OnboardingRun.flow_run_id.is_not(None))  # type: ignore[union-attr]
    tracked_s = tracked_at.result(timeout=5) - t0 if tracked_at.done() else float("nan")
    print(
        f"backlog sweep: {sweep_s:.1f} s wall; all {n:,} tracked in the history {tracked_s:.1f} s "
        f"into it; {parked:,} parked runs ({len(summary.started):,} started by this sweep, "
        f"{len(summary.started) / sweep_s:.1f} runs/s)",
        flush=True,
    )
    while parked < n:
        asyncio.run(watch_channels())
        parked = count(OnboardingRun.flow_run_id.is_not(None))  # type: ignore[union-attr]
    backlog_s = time.monotonic() - t0
    print(
        f"all {n:,} onboardings tracked and parked after {backlog_s:.1f} s; "
        f"Prefect lists {awaiting_runs():,} runs scheduled ahead",
        flush=True,
    )
    if requests:
        print(f"  Prefect API requests per onboarding parked: {requests.since(backlog_mark, n)}")
        idle_mark = requests.mark()

    servers = {name: proc for name, proc in procs.items() if name.startswith("prefect")}
    server_pids = [p for proc in servers.values() for p in proc_tree(proc.pid)]
    product_pids = [  # the sandbox stands in for 360dialog: not part of the product
        p for name, proc in procs.items() if name != "sandbox" for p in proc_tree(proc.pid)
    ]
    cpu0, t_idle = cpu_seconds(server_pids), time.monotonic()
    time.sleep(args.idle)
    server_cpu = (cpu_seconds(server_pids) - cpu0) / (time.monotonic() - t_idle) * 100
    executors = [proc for name, proc in procs.items() if name.startswith("serve")]
    flow_processes = sum(len(proc_tree(proc.pid)) - 1 for proc in executors)
    print(
        f"waiting: {flow_processes} flow-run processes, product RSS {rss_mb(product_pids):.0f} MB "
        f"({len(product_pids)} processes), Prefect server CPU {server_cpu:.1f}% of one core "
        f"over {args.idle:.0f} s idle",
        flush=True,
    )
    print(f"  RSS by process: {rss_by_process(procs)}", flush=True)
    if requests:
        print(f"  Prefect API requests per second waiting: {requests.since(idle_mark, args.idle)}")
    if args.skip_settling:
        return
    if args.webhooks:
        webhook_phase(args.webhooks, control, count, hook, callbacks)

    def flip(cid: str) -> None:
        control.post(
            f"/channels/{cid}/status", json={"availability_status": "ready", "status": "ready"}
        )
        flipped[cid] = time.time()

    def completed(channel_ids: list[str]) -> int:
        return count(
            OnboardingRun.state == "completed",
            OnboardingRun.channel_id.in_(channel_ids),  # type: ignore[attr-defined]
        )

    flipped: dict[str, float] = {}
    sweeper = Sweeper(args.sweep_every, watch_channels)

    # Detection: a sample turns ready one at a time, at random moments, while sweeps run on
    # their cadence: latency without a queue of runs waiting for a process slot.
    sample = ids[: args.detect_sample]
    rng = random.Random(7)
    t_start = time.monotonic()
    flips = sorted(t_start + rng.uniform(0, args.detect_window) for _ in sample)
    for cid, at in zip(sample, flips, strict=True):
        sweeper.run_until(at)
        flip(cid)
    while completed(sample) < len(sample):
        sweeper.run_until(time.monotonic() + args.sweep_every)
    if sample:
        report("detection", sample, flipped, engine, args, time.monotonic() - t_start)

    # Settling: all the others turn ready at once.
    rest = ids[args.detect_sample :]
    executor_pids = [p for proc in executors for p in proc_tree(proc.pid)]
    serve_cpu0, server_cpu0 = cpu_seconds(executor_pids), cpu_seconds(server_pids)
    each0 = {
        name: cpu_seconds(proc_tree(proc.pid))
        for name, proc in procs.items()
        if name.startswith(("prefect", "serve"))
    }
    sandbox_cpu0, machine0 = cpu_seconds(proc_tree(procs["sandbox"].pid)), machine_busy()
    sweeper.own_cpu = 0.0
    rss = RssPeak([proc.pid for name, proc in procs.items() if name != "sandbox"])
    settling_mark = requests.mark() if requests else 0
    for cid in rest:
        flip(cid)
    t_flip = time.monotonic()
    done = 0
    while done < len(rest):
        sweeper.run_until(time.monotonic() + args.sweep_every)
        done = completed(rest)
        print(
            f"  +{time.monotonic() - t_flip:6.0f} s: {done:,}/{len(rest):,} completed", flush=True
        )
    total_s = time.monotonic() - t_flip
    peak_rss = rss.stop()
    report("settling", rest, flipped, engine, args, total_s)
    if requests:
        print(
            "  Prefect API requests per onboarding settled (sweeps included): "
            + requests.since(settling_mark, len(rest))
        )
    print(
        f"  product RSS while settling: peak {peak_rss:.0f} MB with up to "
        f"{args.max_running + 1} flow runs executing in each executor; at the end: "
        f"{rss_by_process(procs)}"
    )
    serve_cpu = cpu_seconds(executor_pids) - serve_cpu0
    server_cpu_s = cpu_seconds(server_pids) - server_cpu0
    sandbox_cpu = cpu_seconds(proc_tree(procs["sandbox"].pid)) - sandbox_cpu0
    busy, elapsed = (now - then for now, then in zip(machine_busy(), machine0, strict=True))
    per = len(rest)
    print(
        f"  CPU-s while settling, per onboarding: executor "
        f"{serve_cpu / per:.2f}, Prefect server {server_cpu_s / per:.2f}, sweeps "
        f"{sweeper.own_cpu / per:.2f}, sandbox {sandbox_cpu / per:.2f}; the machine's CPUs "
        f"were {busy / elapsed:.0%} busy ({os.cpu_count()} CPUs, {total_s:.0f} s)"
    )
    if len(each0) > 2:  # several server or worker processes: each one's share
        each = ", ".join(
            f"{name} {(cpu_seconds(proc_tree(procs[name].pid)) - before) / per:.3f}"
            for name, before in each0.items()
        )
        print(f"  CPU-s per onboarding by process: {each}")
    onboardings = n + args.webhooks
    print(
        f"  Prefect rows per onboarding (all {onboardings:,}, sweeps included): "
        f"{prefect_rows(env, onboardings)}"
    )
    if requests:
        print(
            f"  Prefect API requests per onboarding (all {onboardings:,}, the whole run): "
            + requests.since(0, onboardings)
        )
    with session_scope(engine) as session:
        runs = session.exec(select(OnboardingRun).where(OnboardingRun.channel_id.in_(ids))).all()  # type: ignore[attr-defined]
    starts = process_starts([r.flow_run_id for r in runs if r.flow_run_id])
    print(
        f"executions per onboarding (all {n:,}): max {max(starts)}, "
        f"mean {statistics.mean(starts):.2f} (one Running state each; "
        + (
            "no process is started: the worker runs them in-process)"
            if args.worker_type == "onboarding"
            else "a process per execution)"
        )
    )
    print(f"  at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


def webhook_phase(k: int, control, count, hook: str, callbacks: CallbackSink) -> None:
    """K channels announced by webhook, then turning ready one per second, each with its
    ``channel_ready`` webhook: latency from the flip to the partner's callback."""
    from onboarding.store import OnboardingRun

    control.post("/webhook_url", json={"webhook_url": hook})
    try:
        ids = control.post("/channels/bulk", json={"count": k, "send_webhook": True}).json()["ids"]
        deadline = time.monotonic() + 300
        parked = OnboardingRun.channel_id.in_(ids), OnboardingRun.flow_run_id.is_not(None)  # type: ignore[attr-defined,union-attr]
        while count(*parked) < k:
            if time.monotonic() > deadline:
                raise TimeoutError("the webhooks' onboardings were not all parked")
            time.sleep(0.2)
        flipped: dict[str, float] = {}
        t0 = time.monotonic()
        for i, cid in enumerate(ids):
            time.sleep(max(0.0, t0 + i - time.monotonic()))
            flipped[cid] = time.time()
            control.post(
                f"/channels/{cid}/status",
                json={"availability_status": "ready", "status": "ready", "send_webhook": True},
            )
        while any(cid not in callbacks.arrived for cid in ids):
            if time.monotonic() > deadline + k:
                raise TimeoutError("not every webhook's callback arrived")
            time.sleep(0.1)
    finally:
        control.post("/webhook_url", json={"webhook_url": None})
    latency = [callbacks.arrived[cid] - flipped[cid] for cid in ids]
    print(
        f"webhooks: {k} channels turned ready 1/s, each with its channel_ready webhook\n"
        f"  flip -> partner callback delivered: p50 {statistics.median(latency):5.2f} s, "
        f"p95 {pct(latency, 0.95):5.2f} s, max {max(latency):5.2f} s",
        flush=True,
    )


class Sweeper:
    """Runs the watcher's sweep in this process every ``every`` seconds, start to start."""

    def __init__(self, every: float, sweep) -> None:
        self.every, self.sweep = every, sweep
        self.next_at = time.monotonic()
        self.own_cpu = 0.0
        self.failed = 0

    def run_until(self, moment: float) -> None:
        """Sweep whenever one is due before ``moment``; return at ``moment``."""
        while self.next_at <= moment:
            time.sleep(max(0.0, self.next_at - time.monotonic()))
            cpu = time.process_time()
            try:
                asyncio.run(self.sweep())
            except Exception as error:  # as deployed: that sweep fails, the next one runs
                self.failed += 1
                print(f"  a sweep failed ({type(error).__name__}); the next follows", flush=True)
            self.own_cpu += time.process_time() - cpu
            self.next_at += self.every
            if self.next_at < time.monotonic():  # a sweep longer than the interval
                self.next_at = time.monotonic()
        time.sleep(max(0.0, moment - time.monotonic()))


def report(phase: str, channel_ids, flipped, engine, args, wall: float) -> None:
    """Print latency from each flip to the history seeing ``ready`` and to the run finishing."""
    from sqlalchemy import func
    from sqlmodel import select

    from onboarding.store import OnboardingRun, StatusObservation, session_scope

    with session_scope(engine) as session:
        runs = session.exec(
            select(OnboardingRun).where(OnboardingRun.channel_id.in_(channel_ids))  # type: ignore[attr-defined]
        ).all()
        first_ready = dict(
            session.exec(
                select(StatusObservation.channel_id, func.min(StatusObservation.observed_at))
                .where(StatusObservation.availability_status == "ready")
                .where(StatusObservation.channel_id.in_(channel_ids))  # type: ignore[attr-defined]
                .group_by(StatusObservation.channel_id)
            ).all()
        )
    # The sweep's first observation of ready, not the run's settled_at.
    seen = [at.timestamp() - flipped[cid] for cid, at in first_ready.items()]
    finished = [r.finished_at.timestamp() - flipped[r.channel_id] for r in runs if r.finished_at]
    print(
        f"{phase}: {len(channel_ids):,} channels turned ready, all completed after {wall:.0f} s "
        f"(sweep every {args.sweep_every:.0f} s)"
    )
    print(
        f"  flip -> history records ready: p50 {statistics.median(seen):6.1f} s, "
        f"p95 {pct(seen, 0.95):6.1f} s, max {max(seen):6.1f} s"
    )
    print(
        f"  flip -> run finished:          p50 {statistics.median(finished):6.1f} s, "
        f"p95 {pct(finished, 0.95):6.1f} s, max {max(finished):6.1f} s",
        flush=True,
    )


def watch_count(read, target: int) -> concurrent.futures.Future[float]:
    """A future for the monotonic time at which ``read()`` first reaches ``target`` (polled)."""
    done: concurrent.futures.Future[float] = concurrent.futures.Future()

    def poll() -> None:
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            if read() >= target:
                done.set_result(time.monotonic())
                return
            time.sleep(0.2)

    threading.Thread(target=poll, daemon=True).start()
    return done


def awaiting_runs() -> int:
    """Flow runs Prefect holds as parked onboardings: ``Scheduled`` ahead (the UI's Upcoming)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterName,
        FlowRunFilterNextScheduledStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        return client.count_flow_runs(
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(like_="onboard-"),  # not the sweeps scheduled ahead
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                next_scheduled_start_time=FlowRunFilterNextScheduledStartTime(
                    after_=datetime.now(UTC)
                ),
            )
        )


def process_starts(flow_run_ids: list[str]) -> list[int]:
    """How many times each flow run entered Running (each is one process start)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [
            sum(1 for state in client.read_flow_run_states(run_id) if state.is_running())
            for run_id in flow_run_ids
        ]


if __name__ == "__main__":
    main()
