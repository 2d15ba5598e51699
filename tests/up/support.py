"""Run ``onboarding up`` as a real subprocess in a scratch directory and look at what it runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlmodel import func, select

from onboarding.launcher.auth import auth_headers, read_auth_string
from onboarding.store import InboundEvent, OnboardingRun, make_engine, session_scope
from tests import polling
from tests.servers import free_port

__all__ = ["UpProcess", "answers", "prefect_post", "processes_in", "running_up", "wait_for"]

T = TypeVar("T")
WEBHOOK_TOKEN = "up-test-token-0123456789"  # known, so the tests can prove it is never shown
_STRIPPED_PREFIXES = ("D360_", "PREFECT_", "ONBOARDING_", "SANDBOX_")


def wait_for(probe: Callable[[], T], *, timeout: float, what: str) -> T:
    """Poll ``probe`` every 0.5 s until it returns something truthy; fail after ``timeout``."""
    return polling.wait_for(probe, timeout=timeout, what=what, interval=0.5)


def answers(url: str) -> bool:
    """True when ``GET url`` answers 2xx."""
    try:
        return httpx.get(url, timeout=2.0, trust_env=False).is_success
    except httpx.HTTPError:
        return False


def prefect_post(
    api_url: str, path: str, body: dict[str, Any], *, auth_string: str | None
) -> httpx.Response:
    """``POST api_url + path`` with the auth string and a fresh CSRF token, as Prefect's client."""
    headers = auth_headers(auth_string)
    client_id = str(uuid.uuid4())
    with httpx.Client(base_url=api_url, headers=headers, timeout=10.0, trust_env=False) as http:
        token = http.get("/csrf-token", params={"client": client_id})
        token.raise_for_status()
        csrf = {"Prefect-Csrf-Token": token.json()["token"], "Prefect-Csrf-Client": client_id}
        return http.post(path, json=body, headers=csrf)


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
    def home(self) -> Path:
        """``ONBOARDING_HOME`` of this ``up`` (the default, under its working directory)."""
        return self.cwd / ".onboarding"

    def auth_string(self) -> str | None:
        """The Prefect API auth string ``up`` generated (None before it did)."""
        return read_auth_string(self.home)

    def prefect_post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """``POST`` to ``up``'s Prefect API as a client does: auth string and CSRF token."""
        return prefect_post(self.prefect_api, path, body, auth_string=self.auth_string())

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
            response = self.prefect_post(
                "/flow_runs/filter", {"flow_runs": {"name": {"like_": "onboard-"}}, "limit": 200}
            )
        except httpx.HTTPError:
            return []
        if not response.is_success:
            return []
        return [run["name"] for run in response.json() if run["name"].startswith("onboard-")]


@contextlib.contextmanager
def running_up(
    tmp_path: Path, *args: str, env_extra: dict[str, str] | None = None
) -> Iterator[UpProcess]:
    """``python -m onboarding.cli up *args`` in ``tmp_path``, free ports, ``env_extra`` set.

    Pass ``--demo`` (no credentials are set). :attr:`UpProcess.db_url` is the history ``up``
    writes: with ``--demo`` its own under ``.onboarding/demo``, else ``tmp_path/history.db``
    (also the configured ``ONBOARDING_DATABASE_URL`` unless ``env_extra`` sets another).
    Whatever happens in the test, the process (and, through its own cleanup, its children) is
    stopped when the block ends.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_PREFIXES)}
    ports = free_port(), free_port(), free_port()
    configured = f"sqlite:///{tmp_path / 'history.db'}"
    db_url = f"sqlite:///{tmp_path / '.onboarding' / 'demo' / 'history.db'}"
    if "--demo" not in args:
        db_url = configured
    env.update(
        {
            "ONBOARDING_DATABASE_URL": configured,
            "ONBOARDING_PREFECT_PORT": str(ports[0]),
            "ONBOARDING_RECEIVER_PORT": str(ports[1]),
            "ONBOARDING_SANDBOX_PORT": str(ports[2]),
            "ONBOARDING_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "120",
            **(env_extra or {}),
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
