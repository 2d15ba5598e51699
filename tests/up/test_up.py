"""`onboarding up` end to end: real Prefect server, sandbox, served deployments and receiver.

Each test starts the whole product in a scratch directory on a fresh Prefect database (about
15-30 s on 2 cores). The demo scenario settles its first channel 20 s after the sandbox starts,
so a 1.5-minute window reliably shows completed onboardings, not only created ones.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.up.support import answers, processes_in, running_up, wait_for

pytestmark = pytest.mark.slow

STARTUP = 200.0  # a fresh Prefect database is migrated on first start; slow on a busy machine


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _all_gone(cwd: Path, ports: list[int]) -> bool:
    return not processes_in(cwd) and not any(_listening(port) for port in ports)


def test_demo_window_onboards_channels_then_stops_everything(tmp_path: Path) -> None:
    """`up --demo-minutes 1.5` onboards demo channels, prints a summary, exits 0, leaves nothing."""
    with running_up(tmp_path, "--demo-minutes", "1.5") as up:
        wait_for(lambda: answers(f"{up.prefect_api}/health"), timeout=STARTUP, what="Prefect")
        wait_for(lambda: answers(f"{up.receiver_url}/healthz"), timeout=60, what="the receiver")
        wait_for(lambda: up.history_counts()[0] >= 1, timeout=90, what="an onboarding run")
        names = wait_for(up.prefect_onboard_runs, timeout=60, what="onboard-... flow runs")
        code = up.wait(timeout=180)
        output = up.output()
        logs = {path.name: path.read_text(errors="replace") for path in tmp_path.rglob("*.log")}

    assert code == 0, output
    assert all(name.startswith("onboard-") for name in names)
    runs, completed, inbox = up.history_counts()
    assert runs >= 3, output
    assert completed >= 1, output
    assert inbox >= runs  # every run here was started by a partner webhook stored first
    assert f"http://127.0.0.1:{up.prefect_port}" in output
    assert f"{up.receiver_url}/hooks/360dialog/{up.token[:4]}…" in output
    assert "No Partner API credentials set" in output
    assert "Onboarding runs by state" in output
    assert "completed" in output
    assert "Traceback" not in output
    # With the sandbox the webhook token is registered for the partner, never shown or logged.
    assert up.token not in output
    assert {"prefect-server.log", "sandbox.log", "serve.log", "receiver.log"} <= set(logs)
    assert [name for name, text in logs.items() if up.token in text] == []
    ports = [up.prefect_port, up.receiver_port, up.sandbox_port]
    wait_for(lambda: _all_gone(tmp_path, ports), timeout=15, what="children to be gone")


def test_ctrl_c_stops_every_child_cleanly(tmp_path: Path) -> None:
    """SIGINT to a running `up` stops the receiver and every child, exits 0, no traceback."""
    with running_up(tmp_path) as up:
        wait_for(lambda: "Ctrl-C to stop" in up.output(), timeout=STARTUP, what="the panel")
        assert answers(f"{up.receiver_url}/healthz")
        assert answers(f"http://127.0.0.1:{up.sandbox_port}/sandbox/healthz")
        assert any("deployments.serve" in cmd for cmd in processes_in(tmp_path))
        up.interrupt()
        code = up.wait(timeout=90)
        output = up.output()

    assert code == 0, output
    assert "stopped" in output
    assert "Traceback" not in output
    assert "KeyboardInterrupt" not in output
    ports = [up.prefect_port, up.receiver_port, up.sandbox_port]
    wait_for(lambda: _all_gone(tmp_path, ports), timeout=15, what="children to be gone")


def test_kill_9_of_up_leaves_no_child_behind(tmp_path: Path) -> None:
    """`up` killed outright (SIGKILL, no cleanup of its own): its Prefect server, executor and
    sandbox die with it and free their ports."""
    with running_up(tmp_path) as up:
        wait_for(lambda: "Ctrl-C to stop" in up.output(), timeout=STARTUP, what="the panel")
        assert any("deployments.serve" in cmd for cmd in processes_in(tmp_path))
        assert any("prefect server start" in cmd for cmd in processes_in(tmp_path))
        up.process.kill()
        up.wait(timeout=30)

        ports = [up.prefect_port, up.receiver_port, up.sandbox_port]
        wait_for(lambda: _all_gone(tmp_path, ports), timeout=60, what="children to be gone")
