"""Expected failures are one clear line and the documented exit code, never a traceback.

Every command runs as a real subprocess, as an operator runs it, against what goes wrong in a
first hour: a history database that does not exist, one that is not migrated, an unreachable
PostgreSQL (its URL with a password that must not be shown), a Prefect API that does not
answer, and Partner API credentials the sandbox refuses. The cases run a few at a time (each is
a fresh interpreter; a few start a temporary Prefect server, each on its own Prefect home); each
is then its own test.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fixtures.sandbox import SandboxServer
from tests.servers import free_port

PG_PASSWORD = "hunter2-planted"
BAD_KEY = "wrong-key-planted-4711"
SECRETS = (PG_PASSWORD, BAD_KEY)
UPGRADE = "onboarding db upgrade"


@dataclass(frozen=True)
class Case:
    """One command in one broken situation, and what the operator must see."""

    id: str
    args: tuple[str, ...]
    scenario: str
    code: int
    says: tuple[str, ...] = ()  # phrases the error line (or doctor's report) holds
    creates_nothing: bool = False  # a read: the working directory and home stay empty
    extra: Mapping[str, str] = field(default_factory=dict)


READS = (("status",), ("history", "ch-1"), ("report",), ("db", "current"))
CASES = [
    *(
        Case(f"missing-{'-'.join(a)}", a, "missing", 3, ("does not exist", UPGRADE), True)
        for a in READS
    ),
    Case("missing-default-status", ("status",), "default", 3, ("onboarding.db", UPGRADE), True),
    Case("missing-db-downgrade", ("db", "downgrade", "base"), "missing", 3, (UPGRADE,), True),
    Case(
        "missing-demo-status", ("status", "--demo"), "missing", 3, ("onboarding up --demo",), True
    ),
    Case("missing-demo-report", ("report", "--demo"), "missing", 3, ("demo/history.db",), True),
    Case("missing-doctor", ("doctor", "--no-send"), "missing", 1, ("does not exist",), True),
    *(
        Case(f"unmigrated-{'-'.join(a)}", a, "unmigrated", 3, ("is not migrated", UPGRADE))
        for a in READS[:3]
    ),
    Case("unmigrated-doctor", ("doctor", "--no-send"), "unmigrated", 1, ("not migrated",)),
    *(
        Case(f"pg-down-{'-'.join(a)}", a, "pg_down", 3, ("is unreachable", "postgres:***@"))
        for a in (
            *READS,
            ("db", "upgrade"),
            ("onboard", "ch-1"),
            ("sweep",),
            ("receiver",),
            ("up",),
        )
    ),
    Case("pg-down-doctor", ("doctor", "--no-send"), "pg_down", 1, ("is unreachable",)),
    Case("pg-down-config", ("config",), "pg_down", 0, ("postgres:***@",)),
    Case("prefect-down-onboard", ("onboard", "ch-1"), "prefect_down", 3, ("does not answer",)),
    Case("prefect-down-up", ("up",), "prefect_down", 3, ("does not answer",)),
    Case("prefect-down-doctor", ("doctor", "--no-send"), "prefect_down", 1, ("unreachable",)),
    *(
        Case(f"bad-key-{'-'.join(a)}", a, "bad_key", 3, ("refused the credentials",))
        for a in (("channels",), ("onboard", "ch-1"), ("sweep",), ("rekey", "ch-1", "--yes"))
    ),
    Case("bad-key-doctor", ("doctor", "--no-send"), "bad_key", 1, ("401",)),
    Case("no-credentials-up", ("up",), "no_credentials", 3, ("no Partner API credentials",)),
    Case("sandbox-bad-key-shape", ("sandbox", "--key-shape", "nope"), "ok", 3, ("key shape",)),
]


@dataclass(frozen=True)
class Outcome:
    """What one case printed, and what its working directory held afterwards."""

    result: subprocess.CompletedProcess[str]
    left_behind: list[str]

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr


def _environment(case: Case, sandbox: SandboxServer, workdir: Path) -> dict[str, str]:
    """The case's environment: only what the scenario sets, nothing from the caller's shell."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("D360_", "ONBOARDING_", "PREFECT_API", "SANDBOX_"))
    }
    env |= {
        "COLUMNS": "80",
        # Cases that reach Prefect without PREFECT_API_URL start a temporary server on Prefect's
        # home database: one home each, so two never lock the same SQLite file.
        "PREFECT_HOME": str(workdir.with_name(f"{workdir.name}.prefect-home")),
        "ONBOARDING_HOME": str(workdir / ".onboarding"),
        "ONBOARDING_DATABASE_URL": f"sqlite:///{workdir / 'history.db'}",
        "ONBOARDING_RECEIVER_PORT": str(free_port()),
        "ONBOARDING_PREFECT_PORT": str(free_port()),
        "ONBOARDING_SANDBOX_PORT": str(free_port()),
        "ONBOARDING_CALLBACK_URL": "http://127.0.0.1:9/callback",
        "ONBOARDING_CALLBACK_SECRET": "callback-secret-for-the-test",
        **sandbox.credentials(),
    }
    match case.scenario:
        case "default":
            del env["ONBOARDING_DATABASE_URL"]  # the default: ./onboarding.db
        case "unmigrated":
            with sqlite3.connect(workdir / "history.db") as conn:
                conn.execute("CREATE TABLE unrelated (x INTEGER)")
        case "pg_down":
            url = f"postgresql+psycopg://postgres:{PG_PASSWORD}@127.0.0.1:{free_port()}/history"
            env["ONBOARDING_DATABASE_URL"] = url
        case "prefect_down":
            env["PREFECT_API_URL"] = f"http://127.0.0.1:{free_port()}/api"
        case "bad_key":
            env["D360_API_KEY"] = BAD_KEY
        case "no_credentials":
            for name in ("D360_PARTNER_ID", "D360_API_KEY"):
                del env[name]
    return env | dict(case.extra)


def _run(case: Case, sandbox: SandboxServer, workdir: Path) -> Outcome:
    workdir.mkdir()
    env = _environment(case, sandbox, workdir)
    before = set(workdir.iterdir())
    result = subprocess.run(
        [sys.executable, "-m", "onboarding.cli", *case.args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    left = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*") if p not in before)
    return Outcome(result, left)


@pytest.fixture(scope="module")
def outcomes(
    sandbox_server: SandboxServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    """Every case, run a few at a time against the one session sandbox."""
    sandbox_server.reset()
    root = tmp_path_factory.mktemp("failures")

    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = {case.id: pool.submit(_run, case, sandbox_server, root / case.id) for case in CASES}
        return {name: run.result() for name, run in runs.items()}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_one_clear_line_and_the_documented_exit_code(
    case: Case, outcomes: dict[str, Outcome]
) -> None:
    """The exit code is the documented one; no traceback; one error line that says what to do."""
    outcome = outcomes[case.id]
    output = outcome.output
    assert outcome.result.returncode == case.code, output
    assert "Traceback" not in output, output
    for secret in SECRETS:
        assert secret not in output
    errors = [line for line in outcome.result.stderr.splitlines() if line.startswith("error:")]
    if case.code == 3:
        assert len(errors) == 1, output
        shown = errors[0]
    else:
        assert errors == [], output
        shown = output
    for phrase in case.says:
        assert phrase in shown, output
    if case.creates_nothing:
        assert outcome.left_behind == [], outcome.left_behind
