"""No command prints a secret: a distinct one is planted in every setting that can carry one.

Each command runs as a real subprocess against real servers: the history on a fresh PostgreSQL
database (its URL given a password; the server trusts loopback), the Partner API sandbox (which
refuses the planted key, so the error paths are exercised), a real Prefect API, and a loopback
sink as callback and alert target. (`up --demo`'s banner, logs and rows: tests/up/test_up.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from onboarding.store import upgrade
from tests.fixtures.database import fresh_database
from tests.planted import PASSWORD, Planted, Recorder, leaks, plant
from tests.servers import serve_in_thread

pytestmark = pytest.mark.postgres


@dataclass
class Planting:
    """The planted environment and a way to run a command in it."""

    planted: Planted
    cwd: Path

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        """`onboarding *args` with the planted settings (and ``extra``)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("D360_", "ONBOARDING_", "PREFECT_API"))
        }
        env.update({**self.planted.env, "COLUMNS": "200", **extra})
        return subprocess.run(
            [sys.executable, "-m", "onboarding.cli", *args],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )


@pytest.fixture(scope="module")
def planting(
    postgres_admin_engine: Engine,
    sandbox_server: Any,
    prefect_api: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Planting]:
    """Planted settings pointing at a migrated fresh database, the sandbox and a loopback sink."""
    sink = Recorder()
    with (
        serve_in_thread(sink.app()) as sink_url,
        fresh_database(postgres_admin_engine, "planted") as database_url,
    ):
        planted = plant(sink_url=sink_url, database_url=database_url)
        upgrade(planted.env["ONBOARDING_DATABASE_URL"])
        planted.env.update(
            {
                "D360_HUB_URL": sandbox_server.api_url,
                "PREFECT_API_URL": prefect_api,
                "ONBOARDING_RETRIES": "0",
            }
        )
        yield Planting(planted, tmp_path_factory.mktemp("planted"))


COMMANDS = {
    "config": ["config"],
    "config --markdown": ["config", "--markdown"],
    "doctor": ["doctor"],  # sends its test notice to the loopback sink
    "status": ["status"],
    "sweep": ["sweep"],
    "webhook show": ["webhook", "show"],
}


@pytest.mark.parametrize("args", list(COMMANDS.values()), ids=list(COMMANDS))
def test_command_output_holds_no_planted_secret(planting: Planting, args: list[str]) -> None:
    """The command's stdout and stderr hold none of the planted secrets."""
    result = planting.run(*args)
    output = result.stdout + result.stderr
    assert output.strip(), "the command printed nothing: the search would prove nothing"
    assert "Traceback" not in output, output
    assert leaks(output, planting.planted.secrets) == [], output


def test_config_shows_that_secret_settings_are_set_but_masked(planting: Planting) -> None:
    """`config` still shows each secret-bearing setting, masked, not hidden altogether."""
    output = planting.run("config").stdout
    assert "postgresql+psycopg://postgres:***@127.0.0.1:5432/" in output
    assert "/callback?***" in output
    assert "json://***@127.0.0.1:" in output
    assert "form://127.0.0.1:" in output


def test_settings_error_is_one_clean_line_per_problem(planting: Planting) -> None:
    """Two bad settings: exit 3, one line each, no traceback, no input value, no secret."""
    result = planting.run(
        "config", D360_USERNAME="someone", D360_PASSWORD=PASSWORD, ONBOARDING_RETRIES="many"
    )
    assert result.returncode == 3, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1  # the Partner API settings fail first: their one problem
    assert "D360_API_KEY or D360_USERNAME" in lines[0]
    assert "input_value" not in result.stderr
    assert "Traceback" not in result.stderr
    assert leaks(result.stdout + result.stderr, [*planting.planted.secrets, PASSWORD]) == []


def test_settings_errors_of_one_model_are_each_on_a_line(planting: Planting) -> None:
    """Two bad ONBOARDING_ settings give two lines, each naming its variable."""
    result = planting.run("config", ONBOARDING_RETRIES="many", ONBOARDING_POLL_MAX="often")
    assert result.returncode == 3
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, result.stderr
    assert any("ONBOARDING_RETRIES" in line for line in lines)
    assert any("ONBOARDING_POLL_MAX" in line for line in lines)
    assert leaks(result.stderr, planting.planted.secrets) == []
