"""Helpers the benchmarks share: serve an app in a thread, throwaway databases, figures.

Not a test helper: the benchmark scripts import it as ``_common`` (they put ``bench/`` and the
project root on ``sys.path`` themselves), so ``bench/`` stays runnable without pytest. The
loopback server helpers come from ``tests/servers.py``, which needs no pytest either.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import make_url

from onboarding.hub import ApiKeyAuth, HubClient
from onboarding.sandbox import (
    DEFAULT_ADMIN_KEY,
    SANDBOX_API_KEY,
    SANDBOX_PARTNER_ID,
)
from onboarding.sandbox import (
    create_app as create_sandbox_app,
)
from onboarding.store import make_engine, upgrade
from tests.servers import free_port, serve_config_in_thread, serve_in_thread

__all__ = [
    "DEFAULT_POSTGRES_URL",
    "Sandbox",
    "free_port",
    "machine",
    "peak_rss_mb",
    "percentile",
    "postgres_database",
    "serve_config_in_thread",
    "serve_in_thread",
    "serve_sandbox",
    "sqlite_database",
]

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ROOT = Path(__file__).resolve().parents[1]


class Sandbox:
    """A sandbox served on loopback, with its control API at hand (synchronous)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.api_url = f"{url}/api/v2"
        self.partner_id = SANDBOX_PARTNER_ID
        self.api_key = SANDBOX_API_KEY
        self.control = httpx.Client(
            base_url=url, headers={"X-Sandbox-Admin-Key": DEFAULT_ADMIN_KEY}, timeout=120
        )

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """``POST /sandbox/<path>`` and the decoded answer."""
        response = self.control.post(f"/sandbox/{path}", json=body or {})
        response.raise_for_status()
        return response.json()

    def reset(self, *, max_limit: int | None = None) -> None:
        """Back to no channels and zero counts; raise the ``limit`` cap when asked."""
        self.post("reset")
        if max_limit is not None:
            self.post("config", {"max_limit": max_limit})

    def bulk(self, count: int, availability_status: str = "setting_up") -> list[str]:
        """Create ``count`` channels in ``availability_status``; their ids."""
        body = {"count": count, "availability_status": availability_status}
        return self.post("channels/bulk", body)["ids"]

    def set_status(self, channel_id: str, availability_status: str) -> None:
        """Change one channel now, without a webhook."""
        body = {"availability_status": availability_status, "send_webhook": False}
        self.post(f"channels/{channel_id}/status", body)

    def zero_counts(self) -> None:
        """Zero the Partner API request counters."""
        self.control.delete("/sandbox/requests").raise_for_status()

    def counts(self) -> tuple[int, dict[str, int]]:
        """Partner API requests since the last zeroing: total, and by route."""
        data = self.control.get("/sandbox/requests").json()
        return data["total"], data["counts"]

    def hub(self, *, page_size: int) -> HubClient:
        """A product client of this sandbox (it owns its HTTP client: close it)."""
        http = httpx.AsyncClient(base_url=self.api_url, timeout=120)
        client = HubClient(
            http,
            partner_id=self.partner_id,
            auth=ApiKeyAuth(SecretStr(self.api_key)),
            page_size=page_size,
        )
        client._owns_http = True  # as HubClient.from_settings does
        return client


@contextlib.contextmanager
def _sandbox_process() -> Iterator[str]:
    """The sandbox served by uvicorn in a child process (its own CPU and memory); its URL."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "onboarding.sandbox:create_app",
        "--factory",
        "--host=127.0.0.1",
        f"--port={port}",
        "--log-level=warning",
        "--no-access-log",
    ]
    child = subprocess.Popen(command, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/sandbox/healthz", timeout=1).status_code == 200:
                    break
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the sandbox process did not start")
            time.sleep(0.05)
        yield url
    finally:
        child.terminate()
        child.wait(timeout=15)


@contextlib.contextmanager
def serve_sandbox(*, in_process: bool = False) -> Iterator[Sandbox]:
    """A fresh sandbox (no scenario) on loopback: a child process, or a thread of this one."""
    server = serve_in_thread(create_sandbox_app()) if in_process else _sandbox_process()
    with server as url:
        sandbox = Sandbox(url)
        try:
            yield sandbox
        finally:
            sandbox.control.close()


@contextlib.contextmanager
def sqlite_database() -> Iterator[str]:
    """A migrated SQLite file in a temporary directory; its URL."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        yield url


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database (``ONBOARDING_TEST_POSTGRES_URL``), dropped after."""
    base = os.environ.get("ONBOARDING_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    name = f"onboarding_bench_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank ``pct`` percentile of ``values`` (0 when there are none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(math.ceil(pct / 100 * len(ordered)), 1)
    return ordered[min(rank, len(ordered)) - 1]


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def machine() -> str:
    """One line naming the interpreter and CPU count, printed above each table."""
    return f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
