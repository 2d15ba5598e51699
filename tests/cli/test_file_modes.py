"""Files the command line creates are its owner's only (umask 077 at the entry point)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path


def test_history_database_created_by_the_cli_is_private(tmp_path: Path) -> None:
    """`onboarding db upgrade` under a permissive umask still creates the SQLite history 0600."""
    database = tmp_path / "history.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("D360_", "ONBOARDING_"))}
    env["ONBOARDING_DATABASE_URL"] = f"sqlite:///{database}"
    result = subprocess.run(
        [sys.executable, "-m", "onboarding.cli", "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),  # a shell's usual umask: files would be 0644
    )
    assert result.returncode == 0, result.stderr
    created = [database, *tmp_path.glob("history.db-*")]
    modes = {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in created}
    assert modes == {path.name: "0o600" for path in created}
