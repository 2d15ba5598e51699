"""The Prefect API ``up`` uses: the one at ``PREFECT_API_URL``, or a local server it starts.

The local server keeps everything under ``<home>/prefect`` (``PREFECT_HOME``: its SQLite
database, its settings), so it never touches ``~/.prefect``, and requires the auth string kept in
``<home>`` (:mod:`onboarding.launcher.auth`). A server found already running on the port, or
named by ``PREFECT_API_URL``, is used only if it takes our credentials; one that answers without
any is refused (fail closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from onboarding.launcher.auth import auth_headers, ensure_auth_string, server_security_env
from onboarding.launcher.children import Child, Children, open_log
from onboarding.launcher.probe import (
    LaunchError,
    get_ok,
    port_is_open,
    start_until_healthy,
    wait_until,
)

__all__ = [
    "DEPLOYMENTS",
    "SERVER_TUNING",
    "PrefectEndpoint",
    "ensure_prefect",
    "wait_for_deployments",
]

LOCAL_HOST = "127.0.0.1"
STARTUP_TIMEOUT = (
    120.0  # a fresh machine's first start migrates Prefect's database (slow under load)
)
SERVER_TUNING = {
    # Task-run states and events reach the database through Prefect's recorder services, one row
    # per transaction by default: on SQLite every onboarding's task runs then compete for the
    # write lock with the workers' claims ("database is locked", 503s). Batched, each service
    # writes what arrived in one transaction (BENCHMARKS.md, "Each server setting, measured").
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_READ_BATCH_SIZE": "200",
    # Prefect's default interval: flushing events every second slowed parking a backlog by a
    # sixth on SQLite (BENCHMARKS.md, "Each server setting, measured").
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "5",
    # The late-runs service renames due runs not yet claimed "Late", one write each: woken
    # onboardings wait their turn for a worker slot, so a burst of settled channels became a
    # burst of writes that only change a name (BENCHMARKS.md, the worker type's first pass).
    "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
}
"""Prefect server settings `up` starts its server with (and deployments/scale/env.example sets)."""

MIGRATE_ON_START = "PREFECT_SERVER_DATABASE_MIGRATE_ON_START"  # `up` migrates first, then off
DEPLOYMENTS = ("onboard-channel/onboard-channel", "watch-channels/watch-channels")
EXIT_CONFIG = 3


@dataclass(frozen=True)
class PrefectEndpoint:
    """Where the Prefect API and UI are, how ``up`` came by them, and the auth string to send."""

    api_url: str
    ui_url: str
    origin: str  # "started", "running" (found on the port) or "PREFECT_API_URL"
    auth_string: str | None = field(default=None, repr=False)

    @property
    def started(self) -> bool:
        """True when ``up`` started this server (and so stops it)."""
        return self.origin == "started"

    @property
    def headers(self) -> dict[str, str]:
        """The headers every request to this API carries."""
        return auth_headers(self.auth_string)


def ui_url_for(api_url: str) -> str:
    """The UI's address: the API URL without its ``/api`` suffix."""
    base = api_url.rstrip("/")
    return base.removesuffix("/api") or base


async def _status(url: str, headers: dict[str, str]) -> int | None:
    """The HTTP status of ``GET url`` (None when nothing answers)."""
    try:
        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as http:
            return (await http.get(url, headers=headers)).status_code
    except httpx.HTTPError:
        return None


async def _require_access(endpoint: PrefectEndpoint, what: str) -> None:
    """Fail closed: the API must refuse a request without credentials and take ours."""
    probe = f"{endpoint.api_url}/admin/version"
    if endpoint.origin != "PREFECT_API_URL" and await _status(probe, {}) != 401:
        raise LaunchError(
            f"{what} answers without credentials (no auth string): stop it, or set "
            "ONBOARDING_PREFECT_PORT to a free port so `onboarding up` starts its own",
            EXIT_CONFIG,
        )
    if await _status(probe, endpoint.headers) == 401:
        fix = (
            "set PREFECT_API_AUTH_STRING to its auth string"
            if endpoint.origin == "PREFECT_API_URL"
            else "it was started with another auth string; stop it or set "
            "ONBOARDING_PREFECT_PORT to a free port"
        )
        raise LaunchError(f"{what} refused our credentials (401): {fix}", EXIT_CONFIG)


async def ensure_prefect(
    *,
    external_api_url: str | None,
    port: int,
    home: Path,
    children: Children,
    env: MutableMapping[str, str],
) -> PrefectEndpoint:
    """Find or start the Prefect API and point ``env`` (the children's environment) at it.

    A server ``up`` starts requires the auth string kept in ``home`` (CSRF on, CORS limited to
    the UI's origin); ``env`` gets the matching ``PREFECT_API_AUTH_STRING``.
    """
    if external_api_url:
        api_url = external_api_url.rstrip("/")
        if not await get_ok(f"{api_url}/health", within=5.0):
            raise LaunchError(
                f"PREFECT_API_URL={api_url} does not answer (GET /health); start that server "
                "or unset PREFECT_API_URL to let `onboarding up` run a local one",
                EXIT_CONFIG,
            )
        env["PREFECT_API_URL"] = api_url
        endpoint = PrefectEndpoint(
            api_url, ui_url_for(api_url), "PREFECT_API_URL", env.get("PREFECT_API_AUTH_STRING")
        )
        await _require_access(endpoint, f"PREFECT_API_URL={api_url}")
        return endpoint

    api_url = f"http://{LOCAL_HOST}:{port}/api"
    ui_url = ui_url_for(api_url)
    auth_string = ensure_auth_string(home)
    env["PREFECT_API_URL"] = api_url
    env["PREFECT_API_AUTH_STRING"] = auth_string
    env["PREFECT_HOME"] = str((home / "prefect").absolute())
    if port_is_open(LOCAL_HOST, port):
        if await get_ok(f"{api_url}/health"):
            endpoint = PrefectEndpoint(api_url, ui_url, "running", auth_string)
            await _require_access(endpoint, f"the Prefect server on port {port}")
            return endpoint
        raise LaunchError(
            f"port {port} on {LOCAL_HOST} is taken by something that is not a Prefect server; "
            "set ONBOARDING_PREFECT_PORT to a free port",
            EXIT_CONFIG,
        )
    server_env = {
        **env,
        **server_security_env(auth_string=auth_string, ui_origin=ui_url),
        **SERVER_TUNING,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true",
        "PREFECT_SERVER_UI_ENABLED": "true",
    }
    if MIGRATE_ON_START not in env:
        await migrate_database(server_env, children.log_dir / "prefect-server.log")
        server_env[MIGRATE_ON_START] = "false"
    await start_until_healthy(
        children,
        "the Prefect server",
        ["-m", "prefect", "server", "start", "--host", LOCAL_HOST, "--port", str(port)],
        env=server_env,
        log_name="prefect-server.log",
        port=port,
        health_url=f"{api_url}/health",
        within=STARTUP_TIMEOUT,
    )
    return PrefectEndpoint(api_url, ui_url, "started", auth_string)


async def migrate_database(env: Mapping[str, str], log_path: Path) -> None:
    """Bring Prefect's database to this release's schema, in a process of its own.

    A server that migrates at start keeps what the migration loaded for as long as it runs
    (37 MB of its RSS after a fresh or upgraded database: BENCHMARKS.md, "Prefect API
    requests per onboarding; the worker's labels; the migration's memory"); migrated
    here, the server starts with ``PREFECT_SERVER_DATABASE_MIGRATE_ON_START=false``, as
    deployments/scale's API processes do. Output goes to ``log_path``.
    """
    with open_log(log_path) as log:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        code = await asyncio.wait_for(process.wait(), STARTUP_TIMEOUT)
    except TimeoutError:
        code = None
    finally:
        if process.returncode is None:  # timed out, or `up` was stopped meanwhile
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if code != 0:
        outcome = "did not finish" if code is None else f"failed (exit code {code})"
        raise LaunchError(f"migrating Prefect's database {outcome}; see {log_path}")


async def wait_for_deployments(endpoint: PrefectEndpoint, *, within: float, child: Child) -> None:
    """Wait until every deployment in :data:`DEPLOYMENTS` is registered with the API."""

    async def registered() -> bool:
        for name in DEPLOYMENTS:
            url = f"{endpoint.api_url}/deployments/name/{name}"
            if not await get_ok(url, headers=endpoint.headers):
                return False
        return True

    await wait_until(registered, what="the served deployments", within=within, child=child)
