"""Run the ``onboarding`` CLI in a fresh interpreter, as an operator would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["run_cli"]


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`onboarding *args` with exactly ``env``; its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "onboarding.cli", *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
