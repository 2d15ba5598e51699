"""After the demo: `status|history|report --demo` read its history; tables stay readable at 80.

The demo's history is a real migrated SQLite file at ONBOARDING_HOME/demo/history.db, with runs
written through the store; each command runs as a subprocess with COLUMNS=80, as in a terminal.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from onboarding.demo import demo_database_path, demo_database_url
from onboarding.store import (
    RunState,
    make_engine,
    record_observation,
    session_scope,
    settle_run,
    update_run,
    upgrade,
)
from tests.cli_process import run_cli
from tests.fixtures.database import start_test_run

CHANNEL = "9f3c2a7d1eCH"
OTHER = "0b7e55c4a2CH"
LONG_NAME = "Globex Corporation International Holdings"
REASON = "the partner's callback did not take the key; retrying with a fresh key later"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ONBOARDING_HOME holding a demo history: one completed run, one undelivered."""
    home = tmp_path_factory.mktemp("home") / ".onboarding"
    demo_database_path(home).parent.mkdir(parents=True)
    url = demo_database_url(home)
    upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        run, _ = start_test_run(session, CHANNEL, client_id="cl-globex", client_name=LONG_NAME)
        assert run.id is not None
        update_run(session, run_id=run.id, phone_number="+4915112345678")
        for status in ("setting_up", "ready"):
            record_observation(
                session, channel_id=CHANNEL, availability_status=status, status=None, source="poll"
            )
        settle_run(
            session,
            run_id=run.id,
            state=RunState.UNDELIVERED,
            availability_status="ready",
            failure_reason=REASON,
        )
        other, _ = start_test_run(session, OTHER, client_id="cl-initech", client_name=LONG_NAME)
        assert other.id is not None
        settle_run(session, run_id=other.id, state=RunState.COMPLETED, availability_status="ready")
    engine.dispose()
    return home


def _env(home: Path, cwd: Path, **extra: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("D360_", "ONBOARDING_", "PREFECT_API"))
    }
    # The configured history is somewhere else, and missing: --demo must not read it.
    env |= {
        "ONBOARDING_HOME": str(home),
        "ONBOARDING_DATABASE_URL": f"sqlite:///{cwd / 'configured.db'}",
        "COLUMNS": "80",
    }
    return env | extra


def _table_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("│", "┃"))]


@pytest.mark.parametrize("wide", [False, True], ids=["80-columns", "wide"])
def test_status_demo_reads_the_demos_history_whole_at_80_columns(
    home: Path, tmp_path: Path, wide: bool
) -> None:
    """`status --demo` lists the demo's runs; at 80 columns state and channel are never cut,
    lines fit, and --wide brings back every column."""
    args = ["status", "--demo", *(["--wide"] if wide else [])]
    result = run_cli(*args, env=_env(home, tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "…" not in out  # nothing cut with an ellipsis
    rows = _table_lines(out)
    for channel, state in ((CHANNEL, "undelivered"), (OTHER, "completed")):
        assert any(channel in row and re.search(rf"\b{state}\b", row) for row in rows), out
    headers = next(line for line in out.splitlines() if line.startswith("┃"))
    if wide:
        for column in ("run", "client", "phone", "availability", "in state", "reason"):
            assert column in headers
        assert "5678" in out  # the masked phone, shown only in the wide table
    else:
        assert max(len(line) for line in out.splitlines()) <= 80
        assert "phone" not in headers  # the least useful column went first
    assert not (tmp_path / "configured.db").exists()


def test_history_demo_shows_runs_and_transitions_at_80_columns(home: Path, tmp_path: Path) -> None:
    """`history CHANNEL --demo` shows the channel's run and its transitions within 80 columns."""
    result = run_cli("history", CHANNEL, "--demo", env=_env(home, tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert any(CHANNEL in row and "undelivered" in row for row in _table_lines(out)), out
    assert "setting_up" in out
    assert "ready" in out


def test_report_demo_reads_the_demos_history(home: Path, tmp_path: Path) -> None:
    """`report --demo --json` counts the demo's runs, not the configured database's."""
    result = run_cli("report", "--demo", "--json", env=_env(home, tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"completed": 1' in result.stdout


def test_without_demo_the_missing_history_points_at_the_demo(home: Path, tmp_path: Path) -> None:
    """Without --demo the (missing) configured history is one line that names the demo's way."""
    result = run_cli("status", env=_env(home, tmp_path), cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr.count("error:") == 1
    assert "onboarding db upgrade" in result.stderr
    assert "onboarding status --demo" in result.stderr
    assert list(tmp_path.iterdir()) == []
