"""`onboarding onboard`, `status` and `history` as a user runs them, against real servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from onboarding.store import find_runs, make_engine, session_scope
from tests.cli_process import run_cli

pytestmark = pytest.mark.slow


def _cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env={**os.environ, **env}, timeout=timeout)


def _wait_for(predicate, *, timeout: float = 60.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met before the deadline")


@pytest.mark.parametrize(
    ("setup", "expected_code"),
    [
        pytest.param({"availability_status": "ready", "status": "ready"}, 0, id="ready-exit-0"),
        pytest.param({"availability_status": "error", "status": "error"}, 1, id="error-exit-1"),
        pytest.param({}, 2, id="deadline-exit-2"),
    ],
)
def test_onboard_exit_codes(onboarding_env, sandbox, setup, expected_code):
    """`onboarding onboard` exits 0 completed, 1 failed, 2 deadline, with one readable line."""
    channel = sandbox.create_channel(**setup)
    env = {**onboarding_env, "ONBOARDING_SETUP_DEADLINE": "1"}
    result = _cli("onboard", channel["id"], "--client", channel["client_id"], env=env)
    assert result.returncode == expected_code, result.stderr[-2000:]
    assert channel["id"] in (result.stdout + result.stderr)
    assert "Traceback" not in result.stderr


def test_onboard_bad_key_exits_3(onboarding_env, sandbox):
    """Wrong credentials exit 3 with one line and no traceback."""
    channel = sandbox.create_channel()
    env = {**onboarding_env, "D360_API_KEY": "nope"}
    result = _cli("onboard", channel["id"], "--client", channel["client_id"], env=env)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "nope" not in result.stderr + result.stdout


def test_status_and_history_json(onboarding_env, sandbox):
    """`status --json` and `history --json` show the run with the documented fields."""
    channel = sandbox.create_channel(availability_status="ready", status="ready")
    assert _cli("onboard", channel["id"], env=onboarding_env).returncode == 0
    status = json.loads(_cli("status", "--json", env=onboarding_env).stdout)
    [run] = [row for row in status if row["channel_id"] == channel["id"]]
    for field in (
        "channel_id",
        "client_id",
        "state",
        "availability_status",
        "trigger",
        "started_at",
        "finished_at",
        "failure_reason",
    ):
        assert field in run
    assert run["state"] == "completed"
    history = json.loads(_cli("history", channel["id"], "--json", env=onboarding_env).stdout)
    assert [t["availability_status"] for t in history["transitions"]] == ["ready"]


def test_killed_mid_wait_then_started_again_finishes_once(
    onboarding_env, sandbox, db_url, callback_receiver
):
    """A run killed while waiting, started again, finishes and notifies the partner exactly once."""
    channel = sandbox.create_channel()
    env = {**onboarding_env, "ONBOARDING_OWNER_LEASE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "onboarding.cli", "onboard", channel["id"]],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    engine = make_engine(db_url)

    def waiting_run():
        with session_scope(engine) as session:
            runs = find_runs(session, channel_id=channel["id"], state="waiting")
        return runs[0] if runs else None

    first = _wait_for(waiting_run)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    sandbox.set_status(channel["id"], "ready", status="ready")
    result = _cli("onboard", channel["id"], env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    with session_scope(engine) as session:
        [run] = find_runs(session, channel_id=channel["id"])
    assert run.id == first.id
    assert run.state == "completed"
    assert run.attempts == 2
    assert len(callback_receiver.calls) == 1
    assert sandbox.api_key_count(channel["id"]) == 1
