"""`onboarding db`: upgrade/current/downgrade print revisions; an unreachable database exits 3."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from onboarding.cli import app
from onboarding.store import head_revision
from tests.servers import free_port


def _run(monkeypatch: pytest.MonkeyPatch, url: str, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("ONBOARDING_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["db", *args])
    return result.exit_code, result.output


def test_upgrade_current_downgrade(monkeypatch: pytest.MonkeyPatch, empty_db_url: str) -> None:
    """`db upgrade` moves an empty database to head and says so; `current` and `downgrade` agree."""
    head = head_revision()
    code, out = _run(monkeypatch, empty_db_url, "upgrade")
    assert code == 0, out
    assert f"<empty> -> {head}" in out
    code, out = _run(monkeypatch, empty_db_url, "current")
    assert code == 0, out
    assert f"{head} (up to date)" in out
    code, out = _run(monkeypatch, empty_db_url, "downgrade", "base")
    assert code == 0, out
    assert f"{head} -> <empty>" in out


def test_unreachable_database_exits_3_with_masked_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreachable database is one error line naming the URL, password hidden, exit code 3."""
    url = f"postgresql+psycopg://postgres:hunter2@127.0.0.1:{free_port()}/history"
    code, out = _run(monkeypatch, url, "upgrade")
    assert code == 3
    assert "is unreachable" in out
    assert "hunter2" not in out
    assert "postgres:***@127.0.0.1" in out


def test_bad_url_exits_3(monkeypatch: pytest.MonkeyPatch) -> None:
    """A URL naming no known database exits 3 with one line."""
    code, out = _run(monkeypatch, "nosuchdb://x/y", "current")
    assert code == 3
    assert "cannot use history database" in out
