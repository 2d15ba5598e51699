"""`onboarding up --demo` end to end: real Prefect server, sandbox, served deployments, receiver.

One demo run (module-scoped, about 2-3 min on 2 cores) is started with a secret planted in every
setting that can carry one, a configured callback and alert sinks on a real loopback server, and
a configured PostgreSQL history; the tests then check what it did and left behind. The demo
scenario settles its first channel 20 s after the sandbox starts, so a 1.5-minute window
reliably shows completed onboardings, not only created ones.
"""

from __future__ import annotations

import socket
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import Engine, inspect, text

from onboarding.launcher.auth import auth_headers
from onboarding.store import make_engine
from tests.fixtures.database import fresh_database
from tests.planted import Recorder, leaks, plant
from tests.servers import serve_in_thread
from tests.up.support import UpProcess, answers, processes_in, running_up, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

STARTUP = 200.0  # a fresh Prefect database is migrated on first start; slow on a busy machine


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _all_gone(cwd: Path, ports: list[int]) -> bool:
    return not processes_in(cwd) and not any(_listening(port) for port in ports)


def _rows(db_url: str) -> str:
    """Every row of every table of the database at ``db_url``, as one text."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            return "\n".join(
                repr(tuple(row))
                for table in tables
                for row in conn.execute(text(f'SELECT * FROM "{table}"'))  # noqa: S608
            )
    finally:
        engine.dispose()


def _tables(db_url: str) -> list[str]:
    engine: Engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return inspect(conn).get_table_names()
    finally:
        engine.dispose()


def _preflight(url: str, origin: str) -> str | None:
    """The ``Access-Control-Allow-Origin`` a browser's CORS preflight from ``origin`` gets."""
    response = httpx.options(
        url,
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        timeout=10,
        trust_env=False,
    )
    return response.headers.get("access-control-allow-origin")


@dataclass
class DemoRun:
    """What one `up --demo --demo-minutes 1.5` did, seen from outside."""

    up: UpProcess
    code: int
    output: str
    names: list[str]
    logs: dict[str, str]
    rows: str
    secrets: list[str]
    sink: Recorder
    configured_tables: list[str]
    status_without_auth: int
    status_with_auth: int
    status_without_csrf: int
    csrf_token_lifetime: timedelta
    cors_for_foreign_origin: str | None
    cors_for_ui_origin: str | None
    modes: dict[str, int]
    pool_concurrency_limit: int | None
    max_running: int
    server_environment: dict[str, str]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory, postgres_admin_engine: Engine) -> DemoRun:
    """Run `up --demo` once with planted secrets; probe its Prefect API; collect what it left."""
    tmp = tmp_path_factory.mktemp("up-demo")
    sink = Recorder()
    with (
        serve_in_thread(sink.app()) as sink_url,
        fresh_database(postgres_admin_engine, "up_configured") as configured,
    ):
        # No HMAC secret: the sandbox does not sign its webhooks, and the demo needs them.
        planted = plant(sink_url=sink_url, database_url=configured, hmac=False)
        args = ("--demo", "--demo-minutes", "1.5")
        with running_up(tmp, *args, env_extra=planted.env) as up:
            api = up.prefect_api
            wait_for(lambda: answers(f"{api}/health"), timeout=STARTUP, what="Prefect")
            auth = wait_for(up.auth_string, timeout=10, what="the auth string file")
            without = httpx.get(f"{api}/admin/version", timeout=10, trust_env=False)
            with_auth = httpx.get(
                f"{api}/admin/version", headers=auth_headers(auth), timeout=10, trust_env=False
            )
            without_csrf = httpx.post(
                f"{api}/flow_runs/filter", json={}, headers=auth_headers(auth), timeout=10
            )
            csrf = httpx.get(
                f"{api}/csrf-token", params={"client": str(uuid4())}, headers=auth_headers(auth)
            ).json()
            csrf_token_lifetime = datetime.fromisoformat(csrf["expiration"]) - datetime.now(UTC)
            cors = {
                origin: _preflight(f"{api}/flow_runs/filter", origin)
                for origin in ("https://evil.example", f"http://127.0.0.1:{up.prefect_port}")
            }
            wait_for(lambda: answers(f"{up.receiver_url}/healthz"), timeout=60, what="receiver")
            wait_for(lambda: up.history_counts()[0] >= 1, timeout=90, what="an onboarding run")
            names = wait_for(up.prefect_onboard_runs, timeout=60, what="onboard-... flow runs")
            pool = httpx.get(
                f"{api}/work_pools/onboarding", headers=auth_headers(auth), timeout=10
            ).json()
            server_environment = _environment_of_child(up.process.pid, "prefect", "server")
            code = up.wait(timeout=180)
        home = tmp / ".onboarding"
        logs = {
            str(path.relative_to(home)): path.read_text(errors="replace")
            for path in home.rglob("*.log")
        }
        modes = {
            str(path.relative_to(tmp)): stat.S_IMODE(path.stat().st_mode)
            for path in [home, *home.rglob("*")]
            if not path.is_symlink()
        }
        full_hook_token = (home / "webhook-url").read_text().strip().rsplit("/", 1)[1]
        return DemoRun(
            up=up,
            code=code,
            output=up.output(),
            names=names,
            logs=logs,
            rows=_rows(up.db_url),
            secrets=[*planted.secrets, auth, full_hook_token],
            sink=sink,
            configured_tables=_tables(planted.env["ONBOARDING_DATABASE_URL"]),
            status_without_auth=without.status_code,
            status_with_auth=with_auth.status_code,
            status_without_csrf=without_csrf.status_code,
            csrf_token_lifetime=csrf_token_lifetime,
            cors_for_foreign_origin=cors["https://evil.example"],
            cors_for_ui_origin=cors[f"http://127.0.0.1:{up.prefect_port}"],
            modes=modes,
            pool_concurrency_limit=pool.get("concurrency_limit"),
            server_environment=server_environment,
            max_running=int(planted.env.get("ONBOARDING_MAX_RUNNING", "8")),
        )


def _environment_of_child(parent: int, *words: str) -> dict[str, str]:
    """The environment of ``parent``'s descendant whose command line holds all of ``words``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            ancestors = _ancestors(int(proc.name))
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if parent in ancestors and all(word.encode() in cmdline for word in words):
            pairs = (item.decode(errors="replace").partition("=") for item in environ if item)
            return {name: value for name, _, value in pairs}
    return {}


def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


def test_up_starts_prefect_with_two_malloc_arenas(demo_run: DemoRun) -> None:
    """`up` starts the Prefect server with MALLOC_ARENA_MAX=2 (lower peak RSS, same CPU)."""
    assert demo_run.server_environment.get("MALLOC_ARENA_MAX") == "2"


def test_up_migrates_prefects_database_before_its_server_starts(demo_run: DemoRun) -> None:
    """`up` migrates Prefect's database in a process of its own, then starts the server with
    migrating at start off: the server does not keep the migration's memory for its life."""
    assert demo_run.server_environment.get("PREFECT_SERVER_DATABASE_MIGRATE_ON_START") == "false"
    server_log = next(text for name, text in demo_run.logs.items() if "prefect-server" in name)
    assert "Migrations succeeded" in server_log


def test_up_bounds_the_pool_with_a_concurrency_limit(demo_run: DemoRun) -> None:
    """`up` sets the `onboarding` pool's concurrency limit to ONBOARDING_MAX_RUNNING + 1, so a
    full worker is handed no due runs it cannot take."""
    assert demo_run.pool_concurrency_limit == demo_run.max_running + 1


def test_demo_window_onboards_channels_then_exits_0(demo_run: DemoRun) -> None:
    """`up --demo --demo-minutes 1.5` completes demo onboardings, prints a summary, exits 0."""
    assert demo_run.code == 0, demo_run.output
    assert all(name.startswith("onboard-") for name in demo_run.names)
    runs, completed, inbox = demo_run.up.history_counts()
    assert runs >= 3, demo_run.output
    assert completed >= 1, demo_run.output
    assert inbox >= runs  # every run here was started by a partner webhook stored first
    assert "Onboarding runs by state" in demo_run.output
    assert "Traceback" not in demo_run.output
    logs = set(demo_run.logs)
    assert {"logs/prefect-server.log", "logs/sandbox.log", "logs/worker.log"} <= logs


def test_demo_banner_says_what_it_ignores_and_masks_the_token(demo_run: DemoRun) -> None:
    """The banner names the ignored settings, the UI login file, and the hook URL masked."""
    up = demo_run.up
    assert "ONBOARDING_CALLBACK_URL/_SECRET and ONBOARDING_ALERT_URLS are ignored" in (
        " ".join(demo_run.output.split())
    )
    assert f"http://127.0.0.1:{up.prefect_port}" in demo_run.output
    assert f"{up.receiver_url}/hooks/360dialog/pl4n***" in demo_run.output
    assert "prefect-auth-string" in demo_run.output
    assert "webhook-url" in demo_run.output


def test_prefect_api_refuses_a_request_without_the_auth_string(demo_run: DemoRun) -> None:
    """The Prefect server `up` started answers 401 to a request without credentials."""
    assert demo_run.status_without_auth == 401


def test_prefect_api_takes_the_auth_string_from_onboarding_home(demo_run: DemoRun) -> None:
    """The auth string kept in ONBOARDING_HOME opens the same API (and the runs are listed)."""
    assert demo_run.status_with_auth == 200
    assert demo_run.names


def test_prefect_api_wants_a_csrf_token_for_changes(demo_run: DemoRun) -> None:
    """With credentials but no CSRF token, a POST is refused (CSRF protection is on)."""
    assert demo_run.status_without_csrf == 403


def test_prefect_csrf_tokens_last_a_week(demo_run: DemoRun) -> None:
    """A worker's runs share one client: a token that expires hourly had them race for new ones
    (each fetch invalidates the last); a week makes that moment rare."""
    assert demo_run.csrf_token_lifetime > timedelta(days=6)


def test_prefect_api_allows_only_the_ui_origin(demo_run: DemoRun) -> None:
    """CORS lets the UI's own origin through and no other."""
    assert demo_run.cors_for_foreign_origin is None
    assert demo_run.cors_for_ui_origin == f"http://127.0.0.1:{demo_run.up.prefect_port}"


def test_demo_sends_nothing_to_the_configured_callback_or_alert_sinks(demo_run: DemoRun) -> None:
    """With --demo the configured callback and alert URLs (a real loopback server) get nothing."""
    _, completed, _ = demo_run.up.history_counts()
    assert completed >= 1  # a completion happened that would have called the callback
    assert demo_run.sink.requests == []


def test_demo_leaves_the_configured_database_untouched(demo_run: DemoRun) -> None:
    """With --demo the configured ONBOARDING_DATABASE_URL gets no table; its own history does."""
    assert demo_run.configured_tables == []
    assert demo_run.up.history_counts()[0] >= 1


def test_no_secret_in_up_output_logs_or_history_rows(demo_run: DemoRun) -> None:
    """No planted secret, auth string or full webhook token is printed, logged or stored."""
    assert leaks(demo_run.output, demo_run.secrets) == []
    for name, text_ in demo_run.logs.items():
        assert leaks(text_, demo_run.secrets) == [], name
    assert demo_run.rows  # the history is not empty: the search below means something
    assert leaks(demo_run.rows, demo_run.secrets) == []


def test_state_files_are_private(demo_run: DemoRun) -> None:
    """Databases, logs and state files under ONBOARDING_HOME are 0600, directories 0700."""
    assert demo_run.modes
    wrong = {
        name: oct(mode)
        for name, mode in demo_run.modes.items()
        if mode != (0o700 if (demo_run.up.cwd / name).is_dir() else 0o600)
    }
    assert wrong == {}


@dataclass
class ProductionRun:
    """What one `up` with Partner API credentials (the session's sandbox) did until Ctrl-C."""

    up: UpProcess
    panel: str
    serving: bool
    receiver_answered: bool
    code: int
    output: str
    hook_file: Path
    logs: dict[str, str]


@pytest.fixture(scope="module")
def production_run(tmp_path_factory: pytest.TempPathFactory, sandbox_server: Any) -> ProductionRun:
    """`up` with credentials (no --demo) until its panel shows, then SIGINT."""
    tmp = tmp_path_factory.mktemp("up-production")
    with running_up(tmp, env_extra=sandbox_server.credentials()) as up:
        wait_for(lambda: "Ctrl-C to stop" in up.output(), timeout=STARTUP, what="the panel")
        panel = up.output()
        receiver_answered = answers(f"{up.receiver_url}/healthz")
        serving = any("worker start" in cmd for cmd in processes_in(tmp))
        up.interrupt()
        code = up.wait(timeout=90)
    logs = {path.name: path.read_text(errors="replace") for path in up.home.rglob("*.log")}
    return ProductionRun(
        up, panel, serving, receiver_answered, code, up.output(), up.home / "webhook-url", logs
    )


def test_ctrl_c_stops_every_child_cleanly(production_run: ProductionRun) -> None:
    """SIGINT to a running `up` stops the receiver and every child, exits 0, no traceback."""
    run = production_run
    assert run.receiver_answered
    assert run.serving
    assert run.code == 0, run.output
    assert "stopped" in run.output
    assert "Traceback" not in run.output
    assert "KeyboardInterrupt" not in run.output
    up = run.up
    ports = [up.prefect_port, up.receiver_port]
    wait_for(lambda: _all_gone(up.cwd, ports), timeout=15, what="children to be gone")


def test_production_banner_masks_the_webhook_token(production_run: ProductionRun) -> None:
    """With credentials the banner shows the hook URL with its token masked, never whole."""
    up = production_run.up
    assert f"{up.receiver_url}/hooks/360dialog/{up.token[:4]}***" in production_run.panel
    assert "Partner Hub" in production_run.panel
    assert up.token not in production_run.output
    assert [name for name, text_ in production_run.logs.items() if up.token in text_] == []


def test_full_webhook_url_is_kept_in_a_private_file(production_run: ProductionRun) -> None:
    """The banner names the file holding the full hook URL; the file is 0600."""
    up = production_run.up
    assert str(production_run.hook_file) in " ".join(production_run.panel.split())
    assert production_run.hook_file.read_text().strip() == (
        f"{up.receiver_url}/hooks/360dialog/{up.token}"
    )
    assert stat.S_IMODE(production_run.hook_file.stat().st_mode) == 0o600


def test_everything_stops_after_the_demo_window(demo_run: DemoRun) -> None:
    """Once the demo window is over no child process or port of `up` is left."""
    up = demo_run.up
    ports = [up.prefect_port, up.receiver_port, up.sandbox_port]
    wait_for(lambda: _all_gone(up.cwd, ports), timeout=15, what="children to be gone")


def test_kill_9_of_up_leaves_no_child_behind(tmp_path: Path) -> None:
    """`up` killed outright (SIGKILL, no cleanup of its own): its Prefect server, executor and
    sandbox die with it and free their ports."""
    with running_up(tmp_path, "--demo") as up:
        wait_for(lambda: "Ctrl-C to stop" in up.output(), timeout=STARTUP, what="the panel")
        assert any("worker start" in cmd for cmd in processes_in(up.cwd))
        assert any("prefect server start" in cmd for cmd in processes_in(up.cwd))
        up.process.kill()
        up.wait(timeout=30)

        ports = [up.prefect_port, up.receiver_port, up.sandbox_port]
        wait_for(lambda: _all_gone(up.cwd, ports), timeout=60, what="children to be gone")
