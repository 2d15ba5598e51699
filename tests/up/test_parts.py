"""The pieces of `onboarding up` that need no Prefect server: live log, children, start errors."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from onboarding.launcher.auth import auth_string_path, ensure_auth_string, read_auth_string
from onboarding.launcher.children import Children
from onboarding.launcher.eventlog import EventLog
from onboarding.launcher.prefect_server import ensure_prefect
from onboarding.launcher.probe import LaunchError
from onboarding.launcher.receiver import GatedHandoff
from onboarding.receiver import HandoffEvent
from onboarding.store import (
    RunState,
    make_engine,
    record_observation,
    session_scope,
    settle_run,
    update_run,
    upgrade,
)
from tests.fixtures.database import start_test_run
from tests.servers import free_port, serve_in_thread
from tests.up.support import wait_for


def _name(channel_id: str, client_id: str | None) -> str:
    return f"onboard-{client_id}-{channel_id}"


def test_event_log_prints_each_change_once(tmp_path: Path) -> None:
    """The live log shows a run's start, each new state, status transitions, each exactly once."""
    url = f"sqlite:///{tmp_path / 'history.db'}"
    upgrade(url)
    engine = make_engine(url)
    log = EventLog(engine, _name)
    assert log.poll() == []
    with session_scope(engine) as session:
        run, _ = start_test_run(session, "ch1", client_id="acme")
        assert run.id is not None
        run_id = run.id
        record_observation(
            session,
            channel_id="ch1",
            availability_status="setting_up",
            status=None,
            source="poll",
            run_id=run_id,
        )
    first = {(line.name, line.text) for line in log.poll()}
    assert first == {
        ("onboard-acme-ch1", "started (webhook)"),
        ("onboard-acme-ch1", "seen setting_up"),
    }
    assert log.poll() == []

    with session_scope(engine) as session:
        update_run(session, run_id=run_id, state=RunState.WAITING)
    assert log.poll() == []  # queued -> parked is not news

    with session_scope(engine) as session:
        record_observation(
            session, channel_id="ch1", availability_status="error", status=None, source="poll"
        )
        settle_run(
            session,
            run_id=run_id,
            state=RunState.FAILED,
            availability_status="error",
            failure_reason="rejected by Meta",
        )
    texts = sorted(line.text for line in log.poll())
    assert texts == ["failed: rejected by Meta", "setting_up → error"]
    assert log.poll() == []
    engine.dispose()


def test_children_stop_takes_the_whole_process_group(tmp_path: Path) -> None:
    """Stopping a child also ends the processes it started (its process group)."""
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen(['sleep', '300'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    children = Children(tmp_path / "logs")
    child = children.start("sleeper", ["-c", script], env=os.environ, log_name="sleeper.log")
    grandchild = int(wait_for(lambda: child.log_path.read_text().strip(), timeout=20, what="pid"))

    asyncio.run(children.stop_all(grace=5))

    assert child.process.returncode is not None
    wait_for(lambda: _gone(grandchild), timeout=10, what="the grandchild to be gone")


def _gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (an unreaped zombie counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def _event() -> HandoffEvent:
    return HandoffEvent(
        inbox_id=1, event_type="channel_created", channel_id="c", client_id="k", data={}
    )


async def test_gate_holds_events_until_open() -> None:
    """Webhooks that arrive before the deployments exist are handed on once the gate opens."""
    seen: list[str] = []

    async def handoff(event: HandoffEvent) -> str:
        seen.append(event.event_type)
        return "handled"

    gate = GatedHandoff(handoff)
    event = _event()
    pending = asyncio.ensure_future(gate(event))
    await asyncio.sleep(0)
    assert seen == []
    gate.open()
    assert await pending == "handled"
    assert seen == ["channel_created"]


async def test_gate_closed_before_open_fails_held_events() -> None:
    """Stopping before Prefect is ready fails held events at once (the replay redoes them)."""

    async def handoff(event: HandoffEvent) -> str:
        raise AssertionError("must not be called")

    gate = GatedHandoff(handoff)
    event = _event()
    pending = asyncio.ensure_future(gate(event))
    gate.close()
    with pytest.raises(RuntimeError, match="replayed later"):
        await pending


async def _prefect_refused(tmp_path: Path, port: int, *, match: str) -> None:
    """``ensure_prefect`` on ``port`` fails with exit code 3 and a message matching ``match``."""
    with pytest.raises(LaunchError, match=match) as caught:
        await ensure_prefect(
            external_api_url=None,
            port=port,
            home=tmp_path,
            children=Children(tmp_path / "logs"),
            env={},
        )
    assert caught.value.code == 3


async def test_port_taken_by_something_else_names_the_setting(tmp_path: Path) -> None:
    """A port that answers, but not as Prefect, is exit code 3 naming ONBOARDING_PREFECT_PORT."""

    async def not_prefect(_request: object) -> PlainTextResponse:
        return PlainTextResponse("nope", 404)

    app = Starlette(routes=[Route("/api/health", not_prefect)])
    with serve_in_thread(app) as base:
        port = int(base.rsplit(":", 1)[1])
        await _prefect_refused(tmp_path, port, match="ONBOARDING_PREFECT_PORT")


def _up(tmp_path: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    """`onboarding up *args` in ``tmp_path`` with no D360_/PREFECT_ settings but ``env_extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("D360_", "PREFECT_"))}
    env["ONBOARDING_DATABASE_URL"] = f"sqlite:///{tmp_path / 'history.db'}"
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "onboarding.cli", "up", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unreachable_prefect_api_url_exits_3(tmp_path: Path) -> None:
    """`up` with PREFECT_API_URL pointing nowhere prints one error line and exits 3."""
    result = _up(tmp_path, "--demo", PREFECT_API_URL=f"http://127.0.0.1:{free_port()}/api")
    assert result.returncode == 3, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1
    assert "PREFECT_API_URL" in errors[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_a_prefect_database_up_cannot_migrate_stops_it_naming_the_log(tmp_path: Path) -> None:
    """Prefect's database is migrated before its server starts: when that fails, `up` exits 1
    with one line naming the log that says why."""
    nowhere = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/prefect"
    result = _up(
        tmp_path,
        "--demo",
        ONBOARDING_PREFECT_PORT=str(free_port()),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=nowhere,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert "migrating Prefect's database failed" in errors[0]
    log = Path(errors[0].rsplit("see ", 1)[1].strip())
    assert log.name == "prefect-server.log"
    assert "Traceback" in log.read_text(), "the log holds Prefect's own account of the failure"
    assert "Traceback" not in result.stdout + result.stderr


def test_up_without_partner_credentials_exits_3_with_one_line(tmp_path: Path) -> None:
    """`up` without Partner API credentials stops at once: exit 3, one line naming the fix."""
    result = _up(tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert "D360_API_KEY" in errors[0]
    assert "--demo" in errors[0]
    assert not (tmp_path / "history.db").exists()  # nothing was started or created


def test_up_with_an_api_key_but_no_partner_id_exits_3(tmp_path: Path) -> None:
    """An API key alone is not enough: without D360_PARTNER_ID `up` exits 3 as well."""
    result = _up(tmp_path, D360_API_KEY="some-key")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "D360_PARTNER_ID" in result.stderr


async def test_running_prefect_server_without_auth_is_refused(
    tmp_path: Path, prefect_api: str
) -> None:
    """A Prefect server on `up`'s port that answers without credentials is refused (exit 3)."""
    port = int(prefect_api.split(":")[-1].split("/")[0])
    await _prefect_refused(tmp_path, port, match="without credentials")


def test_auth_string_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    """The auth string is made on first start, kept 0600 in the home, and the same after."""
    first = ensure_auth_string(tmp_path / "home")
    path = auth_string_path(tmp_path / "home")
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ensure_auth_string(tmp_path / "home") == first


def test_cli_sends_the_local_auth_string_only_to_the_local_server(tmp_path: Path) -> None:
    """A CLI command gets the home's auth string for the local server's URL, not for another."""
    ensure_auth_string(tmp_path / ".onboarding")
    code = (
        "import os\n"
        "from onboarding.cli import main\n"
        "import sys; sys.argv = ['onboarding', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('AUTH=' + os.environ.get('PREFECT_API_AUTH_STRING', ''))\n"
    )
    seen = {}
    for name, url in {
        "local": "http://127.0.0.1:4555/api",
        "remote": "https://prefect.example.com:4555/api",
    }.items():
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ONBOARDING_"))}
        env.update({"PREFECT_API_URL": url, "ONBOARDING_PREFECT_PORT": "4555"})
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        seen[name] = result.stdout.rsplit("AUTH=", 1)[-1].strip()
    assert seen == {"local": read_auth_string(tmp_path / ".onboarding"), "remote": ""}
