"""`onboarding report` from the command line: JSON, the HTML file, the rich view, bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from onboarding.cli import app
from onboarding.store import session_scope
from tests.report.seed import seed_history


@pytest.fixture
def seeded(engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The history seeded around the current time, and the environment pointing at it."""
    with session_scope(engine) as session:
        seed_history(session, datetime.now(UTC))
    monkeypatch.setenv("ONBOARDING_DATABASE_URL", db_url)
    return db_url


def test_json_prints_the_summary(seeded: str) -> None:
    """--json prints the documented fields, with the seeded funnel."""
    result = CliRunner().invoke(app, ["report", "--since", "7d", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"funnel", "time_to_ready", "waiting", "waiting_total", "alerts"}
    assert data["funnel"]["completed"] == 3
    assert data["alerts"]["open_now"] == 2


def test_html_option_writes_an_offline_page(seeded: str, tmp_path: Path) -> None:
    """--html FILE writes the page (with its charts) next to the terminal view."""
    target = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", "--html", str(target)])
    assert result.exit_code == 0, result.output
    assert "Funnel" in result.stdout
    assert "report.html" in result.stdout
    page = target.read_text(encoding="utf-8")
    assert page.count("<svg") == 3


def test_bad_since_is_one_line_and_exit_3(seeded: str) -> None:
    """An unreadable --since is a configuration error (exit 3) that says how to write it."""
    result = CliRunner().invoke(app, ["report", "--since", "a week"])
    assert result.exit_code == 3
    assert "7d" in result.stderr
