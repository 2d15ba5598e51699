"""Run ``onboarding up`` as a real subprocess in a scratch directory and look at what it runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
from sqlmodel import func, select

from onboarding.store import InboundEvent, OnboardingRun, make_engine, session_scope
from tests.servers import free_port

__all__ = ["UpProcess", "answers", "processes_in", "running_up", "wait_for"]

T = TypeVar("T")
WEBHOOK_TOKEN = "up-test-token-0123456789"  # known, so the tests can prove it is never shown
_STRIPPED_PREFIXES = ("D360_", "PREFECT_", "ONBOARDING_", "SANDBOX_")


def wait_for(probe: Callable[[], T], *, timeout: float, what: str) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def answers(url: str) -> bool:
    """True when ``GET url`` answers 2xx."""
    try:
        return httpx.get(url, timeout=2.0, trust_env=False).is_success
    except httpx.HTTPError:
        return False


def processes_in(directory: Path) -> list[str]:
    """Command lines of the live processes whose working directory is ``directory``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if Path(os.readlink(proc / "cwd")) == directory:
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return found


@dataclass
class UpProcess:
    """One ``onboarding up`` subprocess: its ports, history database and captured output."""

    cwd: Path
    process: subprocess.Popen[bytes]
    output_path: Path
    db_url: str
    prefect_port: int
    receiver_port: int
    sandbox_port: int
    token: str = WEBHOOK_TOKEN
    _code: int | None = field(default=None, init=False)

    @property
    def prefect_api(self) -> str:
        """The Prefect API URL ``up`` starts its server on."""
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def receiver_url(self) -> str:
        """The receiver's base URL."""
        return f"http://127.0.0.1:{self.receiver_port}"

    def output(self) -> str:
        """Everything ``up`` printed so far (stdout and stderr)."""
        return self.output_path.read_text(encoding="utf-8", errors="replace")

    def wait(self, timeout: float) -> int:
        """Wait for ``up`` to exit and return its exit code."""
        return self.process.wait(timeout=timeout)

    def interrupt(self) -> None:
        """Send SIGINT to ``up`` only (as a terminal's Ctrl-C would, minus its children)."""
        self.process.send_signal(signal.SIGINT)

    def history_counts(self) -> tuple[int, int, int]:
        """(onboarding runs, completed runs, inbox events) in the history database."""
        engine = make_engine(self.db_url)
        try:
            with session_scope(engine) as session:
                runs = session.exec(select(func.count()).select_from(OnboardingRun)).one()
                done = session.exec(
                    select(func.count())
                    .select_from(OnboardingRun)
                    .where(OnboardingRun.state == "completed")
                ).one()
                inbox = session.exec(select(func.count()).select_from(InboundEvent)).one()
        except Exception:  # the database may not exist yet while `up` is migrating it
            return 0, 0, 0
        finally:
            engine.dispose()
        return runs, done, inbox

    def prefect_onboard_runs(self) -> list[str]:
        """Names of the Prefect flow runs named ``onboard-...``."""
        try:
            response = httpx.post(
                f"{self.prefect_api}/flow_runs/filter",
                json={"flow_runs": {"name": {"like_": "onboard-"}}, "limit": 200},
                timeout=5.0,
                trust_env=False,
            )
        except httpx.HTTPError:
            return []
        if not response.is_success:
            return []
        return [run["name"] for run in response.json() if run["name"].startswith("onboard-")]


@contextlib.contextmanager
def running_up(tmp_path: Path, *args: str) -> Iterator[UpProcess]:
    """``python -m onboarding.cli up *args`` in ``tmp_path``, no credentials, free ports.

    Whatever happens in the test, the process (and, through its own cleanup, its children) is
    stopped when the block ends.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_PREFIXES)}
    ports = free_port(), free_port(), free_port()
    db_url = f"sqlite:///{tmp_path / 'history.db'}"
    env.update(
        {
            "ONBOARDING_DATABASE_URL": db_url,
            "ONBOARDING_PREFECT_PORT": str(ports[0]),
            "ONBOARDING_RECEIVER_PORT": str(ports[1]),
            "ONBOARDING_SANDBOX_PORT": str(ports[2]),
            "ONBOARDING_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "120",
        }
    )
    output_path = tmp_path / "up-output.txt"
    with output_path.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "onboarding.cli", "up", *args],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    up = UpProcess(tmp_path, process, output_path, db_url, *ports)
    try:
        yield up
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
