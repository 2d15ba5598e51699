"""Waiting costs nothing; a settled channel is noticed fast; a backlog is absorbed.

    python bench/bench_waiting.py [--n 1000] [--backend sqlite|postgresql] [--sweep-every 15]

Runs the product as deployed, every part a real process on loopback: a Prefect server
(`prefect server start`, on SQLite or PostgreSQL), `python -m deployments.serve`, the Partner API
sandbox, and the history (SQLite file or PostgreSQL database). Then:

1. **backlog**: N channels appear in the sandbox, all ``setting_up``, with their webhooks lost; one
   sweep (``watch-channels`` run in-process) finds them: time until every one has a history row,
   and until every one has its parked onboarding flow run (visible in the UI, holding no process);
2. **waiting**: with the N runs parked, sample for ``--idle`` seconds: processes of the product,
   their total RSS, the Prefect server's CPU (% of one core);
3. **settling**: all N turn ``ready`` at once; sweeps every ``--sweep-every`` s wake their runs;
   per channel, latency from the flip to the history recording ``ready`` and to the run finishing
   (p50/p95), total time until all N completed, and flow-run process starts per onboarding.

Figures are printed; nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

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
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / ticks


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sweep-every", type=float, default=15.0)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--max-running", type=int, default=4)
    parser.add_argument("--skip-settling", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-waiting-"))
    tag = secrets.token_hex(4)
    api_port, sandbox_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}/api"
    env = dict(os.environ)
    for name in list(env):
        if name.startswith(("D360_", "ONBOARDING_", "PREFECT_")):
            env.pop(name)
    env.update(
        PREFECT_HOME=str(work / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_URL=api,
        PREFECT_RUNNER_POLL_FREQUENCY="2",
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
        ONBOARDING_CREATE_API_KEY="false",
    )
    os.environ.update(env)
    logs = work / "logs"
    logs.mkdir()
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str, *cmd: str) -> subprocess.Popen[bytes]:
        with (logs / f"{name}.log").open("wb") as log:
            procs[name] = subprocess.Popen(
                cmd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        return procs[name]

    try:
        from onboarding.store import upgrade

        upgrade(history)
        start(
            "prefect",
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(api_port),
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
        wait_http(f"{api}/health")
        wait_http(f"http://127.0.0.1:{sandbox_port}/sandbox/healthz")
        serve = start("serve", sys.executable, "-m", "deployments.serve")
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    client.read_deployment_by_name("onboard-channel/onboard-channel")
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        run_bench(args, env, procs, serve, history, sandbox_port)
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
        for name in databases:
            pg_database(name, drop=True)


def run_bench(args, env, procs, serve, history, sandbox_port) -> None:
    import httpx
    from sqlalchemy import func
    from sqlmodel import select

    from flows.watch import watch_channels
    from onboarding.store import OnboardingRun, StatusObservation, make_engine, session_scope

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
    print(f"== backend {args.backend}, N = {n} setting_up channels, webhooks lost")

    t0 = time.monotonic()
    summary = asyncio.run(watch_channels())
    sweep_s = time.monotonic() - t0
    tracked = count(OnboardingRun.channel_id.in_(ids))  # type: ignore[attr-defined]
    parked = count(OnboardingRun.flow_run_id.is_not(None))  # type: ignore[union-attr]
    print(
        f"backlog sweep: {sweep_s:.1f} s wall; {tracked} history rows, {parked} parked runs "
        f"({len(summary.started)} started by this sweep)"
    )
    while parked < n:
        asyncio.run(watch_channels())
        parked = count(OnboardingRun.flow_run_id.is_not(None))  # type: ignore[union-attr]
    backlog_s = time.monotonic() - t0
    print(f"all {n} onboardings tracked and parked after {backlog_s:.1f} s")

    server_pids = proc_tree(procs["prefect"].pid)
    product_pids = [p for proc in procs.values() for p in proc_tree(proc.pid)]
    cpu0, t_idle = cpu_seconds(server_pids), time.monotonic()
    time.sleep(args.idle)
    server_cpu = (cpu_seconds(server_pids) - cpu0) / (time.monotonic() - t_idle) * 100
    flow_processes = len(proc_tree(serve.pid)) - 1
    print(
        f"waiting: {flow_processes} flow-run processes, product RSS {rss_mb(product_pids):.0f} MB "
        f"({len(product_pids)} processes), Prefect server CPU {server_cpu:.1f}% of one core "
        f"over {args.idle:.0f} s idle"
    )
    if args.skip_settling:
        return

    flipped: dict[str, float] = {}
    for cid in ids:
        control.post(
            f"/channels/{cid}/status", json={"availability_status": "ready", "status": "ready"}
        )
        flipped[cid] = time.time()
    t_flip = time.monotonic()
    done = 0
    while done < n:
        asyncio.run(watch_channels())
        done = count(OnboardingRun.state == "completed")
        print(f"  +{time.monotonic() - t_flip:6.0f} s: {done}/{n} completed", flush=True)
        if done < n:
            time.sleep(args.sweep_every)
    total_s = time.monotonic() - t_flip
    with session_scope(engine) as session:
        runs = session.exec(select(OnboardingRun).where(OnboardingRun.channel_id.in_(ids))).all()  # type: ignore[attr-defined]
        first_ready = dict(
            session.exec(
                select(StatusObservation.channel_id, func.min(StatusObservation.observed_at))
                .where(StatusObservation.availability_status == "ready")
                .group_by(StatusObservation.channel_id)
            ).all()
        )
    # The sweep's (or the run's) first observation of ready, not the run's settled_at.
    seen = [at.timestamp() - flipped[cid] for cid, at in first_ready.items() if cid in flipped]
    finished = [r.finished_at.timestamp() - flipped[r.channel_id] for r in runs if r.finished_at]
    starts = process_starts([r.flow_run_id for r in runs if r.flow_run_id])
    print(
        f"settling: all {n} completed {total_s:.0f} s after the flip "
        f"(sweep every {args.sweep_every:.0f} s)"
    )
    print(
        f"  flip -> history sees ready: p50 {statistics.median(seen):.1f} s, "
        f"p95 {pct(seen, 0.95):.1f} s"
    )
    print(
        f"  flip -> run finished:       p50 {statistics.median(finished):.1f} s, "
        f"p95 {pct(finished, 0.95):.1f} s"
    )
    print(
        f"  flow-run process starts per onboarding: max {max(starts)}, "
        f"mean {statistics.mean(starts):.2f} (a start = one Running state)"
    )
    print(f"  at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


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
