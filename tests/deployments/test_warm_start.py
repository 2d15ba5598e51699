"""Served flow runs fork from a warm fork server: the flows are imported once, not per run."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest
from prefect import flow_engine
from prefect.client.orchestration import get_client

from deployments.warm_start import install_warm_start, warm_start_installed
from tests.deployments.warm_flows import where_am_i


@pytest.fixture
def warm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Install warm starts for one test; Prefect's own start method comes back after it."""
    monkeypatch.setattr(flow_engine, "multiprocessing", flow_engine.multiprocessing)
    assert install_warm_start()


def _run_in_subprocess(report: Path) -> multiprocessing.process.BaseProcess:
    process = flow_engine.run_flow_in_subprocess(where_am_i, parameters={"report": str(report)})
    process.join(timeout=120)
    assert process.exitcode == 0, process.exitcode
    return process


def test_flow_runs_fork_from_a_server_that_imported_the_flows(prefect_api, warm, tmp_path):
    """The run's process is forked by the fork server, with the onboarding flow already loaded."""
    assert warm_start_installed()
    report = tmp_path / "warm.json"

    process = _run_in_subprocess(report)

    seen = json.loads(report.read_text())
    assert type(process).__name__ == "ForkServerProcess"
    assert seen["pid"] == process.pid
    assert seen["ppid"] != os.getpid(), "the run was started by this process, not the fork server"
    assert seen["onboarding_flow_imported"], "the fork server did not preload the flows"
    assert seen["api_url"] == prefect_api, "the run did not get the runner's Prefect settings"
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=50)
    mine = [run for run in runs if run.parameters.get("report") == str(report)]
    assert len(mine) == 1
    assert mine[0].state is not None
    assert mine[0].state.is_completed()


def test_prefect_spawns_a_fresh_interpreter_without_it(prefect_api, tmp_path):
    """Without warm starts (ONBOARDING_WARM_START=false), nothing is preloaded: the baseline."""
    assert not warm_start_installed()
    report = tmp_path / "cold.json"

    process = _run_in_subprocess(report)

    seen = json.loads(report.read_text())
    assert type(process).__name__ == "SpawnProcess"
    assert seen["ppid"] == os.getpid()
    assert not seen["onboarding_flow_imported"]


def test_install_is_idempotent(warm):
    """A second install keeps the first fork server's context."""
    first = flow_engine.multiprocessing
    assert install_warm_start()
    assert flow_engine.multiprocessing is first


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()]


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _reaped_cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[13]) + int(fields[14])  # cutime + cstime: children it has waited for


@pytest.mark.slow
def test_served_runs_are_forked_by_the_warm_server(deployed):
    """`python -m deployments.serve` runs its flows from its fork server, not prefect.engine."""
    from tests.e2e.helpers import sweep_now, wait_for

    sweep_now()

    children = {pid: _cmdline(pid) for pid in _children(deployed.pid)}
    servers = [pid for pid, cmd in children.items() if "multiprocessing.forkserver" in cmd]
    assert len(servers) == 1, children
    # The run reports Completed before its process exits and the fork server reaps it.
    wait_for(
        lambda: _reaped_cpu_ticks(servers[0]) > 0,
        timeout=30,
        what="a flow run forked from the warm server to be reaped by it",
    )
    assert not any("prefect.engine" in cmd for cmd in children.values()), children
