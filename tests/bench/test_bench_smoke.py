"""The benchmark scripts still run: each one, at a tiny N, prints its figures and exits 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.sandbox import SandboxServer

BENCH = Path(__file__).resolve().parents[2] / "bench"

pytestmark = pytest.mark.slow


def run_script(name: str, *args: str) -> str:
    """Run ``bench/<name>`` with ``args``; its standard output (the test fails on exit != 0)."""
    done = subprocess.run(
        [sys.executable, str(BENCH / name), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_requests_bench_prints_counts_and_ratio() -> None:
    """bench_requests counts the product's and the naive poller's requests at each page size."""
    out = run_script("bench_requests.py", "--n", "50", "--page-size", "10", "100")
    rows = [line.split() for line in out.splitlines() if line.lstrip().startswith("50 ")]
    assert len(rows) == 4, out
    for row in rows:
        page, product, bound, naive = int(row[1]), int(row[-6]), int(row[-5]), int(row[-4])
        assert naive == 50, row
        assert product <= bound == -(-50 // page) + 2, row


def test_intake_bench_loses_nothing_and_hands_on_once() -> None:
    """bench_intake answers every webhook 202, keeps one row per body, hands each on once."""
    out = run_script(
        "bench_intake.py", "--backend", "sqlite", "--n", "40", "--rate", "200", "--burst", "20"
    )
    assert "paced" in out, out
    assert "202:44 " in out, out  # 40 paced webhooks, 4 of them twice
    assert "202:22 " in out, out  # 20 at once, 2 of them twice
    assert "inbox rows 60 for 60 distinct bodies (lost 0)" in out, out
    assert "handed on exactly once: 60/60, more than once: 0" in out, out


def test_sweep_cost_bench_prints_both_sweeps() -> None:
    """bench_sweep_cost prints sweep 1 (all setting_up and error channels new), then sweep 2."""
    out = run_script("bench_sweep_cost.py", "--backend", "sqlite", "--n", "100", "--changed", "0.1")
    rows = [line.split() for line in out.splitlines() if line.startswith("sqlite")]
    assert [row[1] for row in rows] == ["1", "2"], out
    assert all(int(row[2]) >= 105 for row in rows), out  # setting_up, error, recent ready
    assert int(rows[1][3]) == 10, out  # the 10 % that turned ready


def test_naive_poller_runs_standalone(sandbox: SandboxServer) -> None:
    """naive_poller.py, run as a script, polls until every pending channel left setting_up."""
    ids = sandbox.bulk_channels(3)
    command = [
        sys.executable,
        str(BENCH / "naive_poller.py"),
        "--base-url",
        sandbox.api_url,
        "--partner-id",
        sandbox.partner_id,
        "--api-key",
        sandbox.api_key,
        "--interval",
        "0.1",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as poller:
        assert poller.stdout is not None
        assert poller.stdout.readline() == "3 channel(s) setting_up\n"  # the listing is done
        for channel_id in ids:
            sandbox.set_status(channel_id, "ready", send_webhook=False)
        out, _ = poller.communicate(timeout=60)
    assert poller.returncode == 0
    assert sorted(out.splitlines()) == sorted(f"{channel_id}: ready" for channel_id in ids), out


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(("--count-requests",), id="one-server"),
        pytest.param(
            ("--backend", "postgresql", "--cluster", "2", "--executors", "2"),
            id="scaled-out",
            marks=pytest.mark.postgres,
        ),
    ],
)
def test_waiting_bench_parks_wakes_and_starts_each_run_once(setup: tuple[str, ...]) -> None:
    """bench_waiting, as deployed at N = 6 (one Prefect server, counting its requests, or
    deployments/scale's setup with two API processes and two workers): all parked without a
    process, all completed, each flow run executed exactly once."""
    out = run_script(
        "bench_waiting.py",
        *("--n", "6", "--idle", "1", "--sweep-every", "3"),
        *("--detect-sample", "2", "--detect-window", "2", "--webhooks", "3"),
        *setup,
    )
    if "--count-requests" in setup:  # from the server's access log: the worker's claims, at least
        assert "Prefect API requests per onboarding settled (sweeps included): writes " in out, out
        assert "POST /api/flow_runs/{id}/set_state" in out, out
    if "--cluster" in setup:
        assert "CPU-s per onboarding by process: prefect-api-0 " in out, out
        assert "prefect-api-1 " in out, out
        assert "serve2 " in out, out
    assert "all 6 onboardings tracked and parked" in out, out
    assert "Prefect lists 6 runs scheduled ahead" in out, out
    assert "waiting: 0 flow-run processes" in out, out
    assert "webhooks: 3 channels turned ready 1/s" in out, out
    assert "flip -> partner callback delivered: p50" in out, out
    assert "detection: 2 channels turned ready" in out, out
    assert "settling: 4 channels turned ready" in out, out
    assert "product RSS while settling: peak" in out, out
    assert "executions per onboarding (all 6): max 1, mean 1.00" in out, out
