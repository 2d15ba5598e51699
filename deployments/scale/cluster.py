"""Start the scaled-out setup on one machine: Prefect on PostgreSQL + Redis, API and services
processes apart, prefect.yaml deployed (`prefect deploy --all`) and `onboarding` workers
(`prefect worker start --pool onboarding --type onboarding`).

    python -m deployments.scale.cluster            # reads deployments/scale/env.example's names

The same commands, one per machine, are what deployments/README.md section 3 describes; this
launcher runs them side by side (the scale test uses it, and it is handy for trying the setup).
Every process logs to its own file under ``log_dir``; :meth:`Cluster.tails` shows their ends.

Like ``onboarding up``, it never runs an open API: the API processes bind to ``host`` (loopback
here; a private interface on real machines, with TLS in front), require the auth string
(``PREFECT_SERVER_API_AUTH_STRING``; one is generated unless ``PREFECT_API_AUTH_STRING`` is set),
with CSRF protection on and CORS limited to ``ui_origin``; every client (workers, the Prefect
CLI, a receiver) gets the matching ``PREFECT_API_AUTH_STRING``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import httpx

from onboarding.launcher.auth import auth_headers, server_security_env
from onboarding.launcher.deploy import apply_deployments, worker_command
from onboarding.launcher.prefect_server import SERVER_TUNING

__all__ = ["Cluster", "ClusterSpec", "main", "server_env"]

REPO = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect"]
ALL_INTERFACES = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - the addresses we refuse
DEPLOYMENTS = (
    "onboard-channel/onboard-channel",
    "watch-channels/watch-channels",
    "daily-report/report",
)


@dataclass
class ClusterSpec:
    """What to start: the databases and Redis to use, how many API processes and workers."""

    prefect_db_url: str  # postgresql+asyncpg://... : Prefect's own database
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_db: int = 0
    api_ports: list[int] = field(default_factory=lambda: [4200])
    workers: int = 2  # `onboarding` workers, each on its own API process
    pool: str = "onboarding"
    host: str = "127.0.0.1"  # loopback or a private interface; never 0.0.0.0
    auth_string: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    log_dir: Path = REPO / ".onboarding" / "scale"
    product_env: dict[str, str] = field(default_factory=dict)  # D360_*, ONBOARDING_* for workers
    cwd: Path = REPO  # where workers start (they import the flows from the installed package)
    register: bool = True  # deploy prefect.yaml before starting the workers

    def __post_init__(self) -> None:
        if self.host in ALL_INTERFACES:
            raise ValueError(
                f"host {self.host!r} would open the Prefect API on every interface: bind it to "
                "loopback or a private interface and put a TLS proxy in front"
            )

    @property
    def api_urls(self) -> list[str]:
        """One ``PREFECT_API_URL`` per API process."""
        return [f"http://{self.host}:{port}/api" for port in self.api_ports]

    @property
    def ui_origin(self) -> str:
        """The one origin CORS allows: the first API process's (behind TLS in production)."""
        return self.api_urls[0].removesuffix("/api")


def server_env(spec: ClusterSpec) -> dict[str, str]:
    """Prefect settings shared by every server-side process: PostgreSQL, Redis, credentials."""
    return {
        **SERVER_TUNING,
        **server_security_env(auth_string=spec.auth_string, ui_origin=spec.ui_origin),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": spec.prefect_db_url,
        "PREFECT_SERVER_EVENTS_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_HOST": spec.redis_host,
        "PREFECT_REDIS_MESSAGING_PORT": str(spec.redis_port),
        "PREFECT_REDIS_MESSAGING_DB": str(spec.redis_db),
        # Background tasks the API queues (marking polled queues and deployments ready, log
        # clean-up) go through Redis too: with the default memory:// each process keeps its own.
        "PREFECT_SERVER_DOCKET_URL": f"redis://{spec.redis_host}:{spec.redis_port}/{spec.redis_db}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }


class Cluster:
    """The running processes; use as a context manager (everything is stopped on exit)."""

    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        spec.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # A private PREFECT_HOME: the CLI writes profiles and caches there, not in the user's.
        self.base_env = {
            **os.environ,
            "PREFECT_HOME": str(spec.log_dir / "prefect-home"),
            "PREFECT_API_URL": spec.api_urls[0],
            "PREFECT_API_AUTH_STRING": spec.auth_string,
        }

    # -- lifecycle --------------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """API processes (the first migrates alone), services, prefect.yaml deployed, workers."""
        server = {**self.base_env, **server_env(self.spec)}
        for index, port in enumerate(self.spec.api_ports):
            # The first process migrates the database; the others (and the services) must not
            # race it, as every process would with Prefect's default.
            migrate = "true" if index == 0 else "false"
            self.spawn(
                f"api-{index}",
                [
                    *PREFECT,
                    "server",
                    "start",
                    "--no-services",
                    "--host",
                    self.spec.host,
                    "--port",
                    str(port),
                ],
                {**server, "PREFECT_SERVER_DATABASE_MIGRATE_ON_START": migrate},
            )
            self.wait_healthy(self.spec.api_urls[index])
        self.spawn(
            "services",
            [*PREFECT, "server", "services", "start"],
            {**server, "PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false"},
        )
        if self.spec.register and self.spec.workers:
            self.deploy()
        for index in range(self.spec.workers):
            self.start_worker(
                f"worker-{index}", self.spec.api_urls[index % len(self.spec.api_urls)]
            )

    def deploy(self) -> None:
        """Apply prefect.yaml as `up` does: the work pool, then `prefect deploy --all`."""
        env = {**self.base_env, **self.spec.product_env}
        asyncio.run(
            apply_deployments(
                env=env,
                sweep_interval=float(env.get("ONBOARDING_SWEEP_INTERVAL", "60")),
                log_path=self.log_path("deploy"),
            )
        )
        self.wait_registered(DEPLOYMENTS)

    def start_worker(self, name: str, api_url: str, *, limit: int = 9) -> subprocess.Popen[bytes]:
        """One `onboarding` worker on the pool, talking to ``api_url``."""
        env = {
            **self.base_env,
            **self.spec.product_env,
            "PREFECT_API_URL": api_url,
            "PREFECT_WORKER_QUERY_SECONDS": "0.5",
        }
        return self.spawn(name, [sys.executable, *worker_command(limit=limit)], env)

    def wait_registered(self, names: tuple[str, ...], *, timeout: float = 120) -> None:
        """Poll the first API until every deployment in ``names`` exists."""
        deadline = time.monotonic() + timeout
        api = self.spec.api_urls[0]
        headers = auth_headers(self.spec.auth_string)
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(httpx.TransportError):
                if all(
                    httpx.get(
                        f"{api}/deployments/name/{name}", headers=headers, timeout=2
                    ).status_code
                    == 200
                    for name in names
                ):
                    return
            time.sleep(0.25)
        raise RuntimeError(f"deployments {names} not registered after {timeout:.0f}s")

    def stop(self) -> None:
        """Stop every process this cluster started (their process groups), newest first."""
        for _name, process in reversed(list(self.processes.items())):
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=10)

    # -- pieces -----------------------------------------------------------------------------------

    def log_path(self, name: str) -> Path:
        """Where process ``name`` writes its output."""
        return self.spec.log_dir / f"{name}.log"

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start ``argv`` in its own process group, output to ``<log_dir>/<name>.log``."""
        with _private_log(self.log_path(name)) as log:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=self.spec.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def run_cli(self, args: list[str], *, timeout: float = 180) -> None:
        """Run one ``prefect`` CLI command against the first API, logged; raise on failure."""
        name = f"cli-{args[0]}"
        with _private_log(self.log_path(name)) as log:
            result = subprocess.run(
                [*PREFECT, *args],
                env=self.base_env,
                cwd=self.spec.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        if result.returncode != 0:
            raise RuntimeError(f"`prefect {' '.join(args)}` failed:\n{self.tail(name)}")

    def wait_healthy(self, api_url: str, *, timeout: float = 120) -> None:
        """Poll ``<api_url>/health`` until it answers 200; fail early if a process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"Prefect API {api_url} not healthy after {timeout:.0f}s")

    def check_alive(self) -> None:
        """Raise if any process of the cluster has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {process.returncode}:\n{self.tail(name, lines=30)}"
                )

    def tail(self, name: str, *, lines: int = 40) -> str:
        """The last ``lines`` lines of process ``name``'s log."""
        path = self.log_path(name)
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def tails(self, *, lines: int = 40) -> str:
        """The end of every log, headed by its name (print it when something went wrong)."""
        names = sorted(path.stem for path in self.spec.log_dir.glob("*.log"))
        return "\n".join(f"==> {name} <==\n{self.tail(name, lines=lines)}" for name in names)


def _private_log(path: Path) -> BinaryIO:
    """``path`` opened for appending, readable by its owner only (0600)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def main() -> None:
    """Start the cluster from the environment (see env.example) and keep it up until Ctrl-C."""
    given = os.environ.get("PREFECT_API_AUTH_STRING")
    auth = {"auth_string": given} if given else {}
    os.umask(0o077)
    spec = ClusterSpec(
        prefect_db_url=os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"],
        redis_host=os.environ.get("PREFECT_REDIS_MESSAGING_HOST", "127.0.0.1"),
        redis_port=int(os.environ.get("PREFECT_REDIS_MESSAGING_PORT", "6379")),
        redis_db=int(os.environ.get("PREFECT_REDIS_MESSAGING_DB", "0")),
        api_ports=[int(port) for port in os.environ.get("SCALE_API_PORTS", "4200").split(",")],
        workers=int(os.environ.get("SCALE_WORKERS", "2")),
        host=os.environ.get("SCALE_API_HOST", "127.0.0.1"),
        **auth,
    )
    with Cluster(spec) as cluster:
        print(f"Prefect API: {', '.join(spec.api_urls)}; logs in {spec.log_dir}", flush=True)
        if not given:
            auth_file = spec.log_dir / "prefect-auth-string"
            with os.fdopen(
                os.open(auth_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w"
            ) as handle:
                handle.write(spec.auth_string + "\n")
            print(f"Its auth string (PREFECT_API_AUTH_STRING) is in {auth_file}", flush=True)
        try:
            while True:
                cluster.check_alive()
                time.sleep(2)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
