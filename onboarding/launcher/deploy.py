"""Apply prefect.yaml, the one definition of the deployments, as a Prefect user would.

``up`` creates the ``onboarding`` work pool (type ``onboarding``) if it is missing, then runs
``prefect deploy --all`` on prefect.yaml with one setting filled in: the sweep's interval from
``ONBOARDING_SWEEP_INTERVAL``. Deploying is Prefect's own code: it creates or updates each
deployment and its triggers, and deletes nothing else. Then a worker of the ``onboarding`` type
(``prefect worker start``) runs the pool's flow runs.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from onboarding.launcher.probe import LaunchError

__all__ = ["POOL", "apply_deployments", "definition", "prefect_yaml", "worker_command"]

POOL = "onboarding"
WATCH = "watch-channels"


def prefect_yaml() -> Path:
    """prefect.yaml: the checkout's, else the copy installed with the package."""
    import deployments

    package = Path(deployments.__file__).resolve().parent
    for candidate in (package.parent / "prefect.yaml", package / "prefect.yaml"):
        if candidate.is_file():
            return candidate
    raise LaunchError("prefect.yaml is missing from this installation")


def definition(*, sweep_interval: float) -> dict[str, Any]:
    """prefect.yaml's content, the watcher's interval set to ``sweep_interval`` seconds."""
    document: dict[str, Any] = yaml.safe_load(prefect_yaml().read_text())
    for deployment in document.get("deployments", []):
        if deployment.get("name") == WATCH:
            for schedule in deployment.get("schedules", []):
                if "interval" in schedule:
                    schedule["interval"] = sweep_interval
    return document


def worker_command(*, limit: int, worker_type: str = "onboarding") -> list[str]:
    """``prefect worker start`` for the pool, with our worker type (or another, to compare):
    arguments after python."""
    return [
        "-m",
        "prefect",
        "worker",
        "start",
        "--pool",
        POOL,
        "--type",
        worker_type,
        "--limit",
        str(limit),
    ]


async def apply_deployments(
    *,
    env: Mapping[str, str],
    sweep_interval: float,
    log_path: Path,
    concurrency_limit: int | None = None,
) -> None:
    """Create the work pool if missing, give it the worker's job template (and its concurrency
    limit, when given), then ``prefect deploy --all``; LaunchError on failure.

    The pool's concurrency limit is Prefect's count of the pool's runs that are ``Pending`` or
    ``Running``: a worker asking for due runs gets only as many as there are free slots. Without
    it, every look of a full worker while hundreds are due reads (and the server serialises) up to
    200 runs the worker cannot take (BENCHMARKS.md, "The worker, tuned").
    """
    from onboarding.orchestration.worker import BASE_JOB_TEMPLATE  # imports Prefect's workers

    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        await _prefect(["work-pool", "create", POOL, "--type", "onboarding"], env, log, check=False)
        with tempfile.TemporaryDirectory(prefix="onboarding-deploy-") as folder:
            # A pool created by an earlier version keeps Prefect's base variables, which the
            # server validates for every run it creates: the update gives it the worker's own.
            template = Path(folder) / "base-job-template.json"
            template.write_text(json.dumps(BASE_JOB_TEMPLATE))
            limit = (
                [] if concurrency_limit is None else ["--concurrency-limit", str(concurrency_limit)]
            )
            await _prefect(
                ["work-pool", "update", POOL, "--base-job-template", str(template), *limit],
                env,
                log,
                check=True,
            )
            applied = Path(folder) / "prefect.yaml"
            applied.write_text(yaml.safe_dump(definition(sweep_interval=sweep_interval)))
            await _prefect(
                ["--no-prompt", "deploy", "--all", "--prefect-file", str(applied)],
                env,
                log,
                check=True,
                cwd=folder,
            )


async def _prefect(
    args: list[str], env: Mapping[str, str], log: Any, *, check: bool, cwd: str | None = None
) -> None:
    """Run one ``prefect`` CLI command, its output appended to ``log``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "prefect", *args, env=dict(env), stdout=log, stderr=log, cwd=cwd
    )
    code = await process.wait()
    if check and code != 0:
        raise LaunchError(
            f"`prefect {' '.join(args[:3])}` failed (exit {code}); see {log.name} for why"
        )
