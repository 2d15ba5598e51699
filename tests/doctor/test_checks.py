"""`onboarding doctor` against real servers: the sandbox, SQLite/PostgreSQL, Prefect, a sink."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from onboarding.cli import app
from onboarding.doctor import Status, run_doctor
from onboarding.doctor.checks import (
    check_alert_sinks,
    check_database,
    check_event_names,
    check_prefect,
)
from onboarding.doctor.partner import check_partner_api
from onboarding.settings import load_hub_settings, load_settings
from onboarding.store import session_scope, store_inbound_event
from tests.fixtures.sandbox import SandboxServer
from tests.fixtures.sinks import SinkServer
from tests.servers import free_port

CHANNELS = "GET /partners/{partner_id}/channels"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray D360_*/ONBOARDING_* variable or .env file reaches the checks."""
    monkeypatch.chdir(tmp_path)
    for name in ("HUB_URL", "PARTNER_ID", "API_KEY", "USERNAME", "PASSWORD"):
        monkeypatch.delenv(f"D360_{name}", raising=False)
    monkeypatch.delenv("ONBOARDING_ALERT_URLS", raising=False)


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServer, db_url: str, alert_sink: SinkServer
) -> dict[str, str]:
    """Everything pointing at the test servers (Prefect is set by the tests that need it)."""
    values = {
        **sandbox.credentials(),
        "ONBOARDING_DATABASE_URL": db_url,
        "ONBOARDING_ALERT_URLS": alert_sink.url,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


async def test_partner_api_is_one_request_and_matches_our_models(
    env: dict[str, str], sandbox: SandboxServer
) -> None:
    """Against the sandbox: one list request, credentials accepted, no model difference."""
    sandbox.bulk_channels(3)
    sandbox.reset_request_counts()
    checks = await check_partner_api(load_hub_settings(), limit=2)
    assert [c.status for c in checks] == [Status.OK, Status.OK]
    assert sandbox.request_counts()["total"] == 1
    assert sandbox.request_counts()["counts"] == {CHANNELS: 1}
    assert "page: 2 channel(s), total 3" in checks[1].details


async def test_capped_page_size_is_reported(env: dict[str, str], sandbox: SandboxServer) -> None:
    """A server capping the page below what we ask for is reported as a model difference."""
    sandbox.bulk_channels(5)
    sandbox.configure(max_limit=2)
    checks = await check_partner_api(load_hub_settings(), limit=4)
    assert checks[1].status is Status.WARN
    assert any("asked for 4, server answered limit 2" in line for line in checks[1].details)


async def test_refused_credentials_fail_with_a_fix(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 is a failure that names D360_API_KEY and never prints the key."""
    monkeypatch.setenv("D360_API_KEY", "wrong-key-123")
    [check] = await check_partner_api(load_hub_settings())
    assert check.status is Status.FAIL
    assert "401" in check.summary
    assert "D360_API_KEY" in (check.fix or "")
    assert "wrong-key-123" not in check.model_dump_json()


async def test_a_malformed_page_is_compared_field_by_field(
    env: dict[str, str], sandbox: SandboxServer
) -> None:
    """A JSON page of the wrong shape fails, and the comparison names what is missing."""
    body = {"partner_channels": [{"availability_status": "paused"}], "limit": 5}  # no id
    sandbox.add_fault("malformed", body=json.dumps(body), path_contains="/channels")
    failure, models = await check_partner_api(load_hub_settings(), limit=5)
    assert failure.status is Status.FAIL
    assert models.status is Status.WARN
    text = "\n".join(models.details)
    assert "page fields missing: count, offset, total" in text
    assert "unknown availability_status: paused (1)" in text
    assert "waba_account (1)" in text
    assert "id (1)" in text


async def test_a_non_json_answer_says_so(env: dict[str, str], sandbox: SandboxServer) -> None:
    """An HTML error page instead of JSON is one failure saying the body was not JSON."""
    sandbox.add_fault("malformed", path_contains="/channels")
    [check] = await check_partner_api(load_hub_settings())
    assert check.status is Status.FAIL
    assert check.details == ["the body was not JSON"]


async def test_no_credentials_is_a_warning_without_a_request(sandbox: SandboxServer) -> None:
    """Without credentials the Partner API is not called and the check says how to set them."""
    sandbox.reset_request_counts()
    [check] = await check_partner_api(load_hub_settings())
    assert check.status is Status.WARN
    assert sandbox.request_counts()["total"] == 0


def test_unmigrated_database_fails_with_the_upgrade_command(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database without the schema fails and says `onboarding db upgrade`."""
    from onboarding.store.readiness import sqlite_path

    path = sqlite_path(empty_db_url)
    if path is not None:
        path.touch()  # an empty SQLite file; a missing one is "does not exist" (and not created)
    monkeypatch.setenv("ONBOARDING_DATABASE_URL", empty_db_url)
    check = check_database(load_settings())
    assert check.status is Status.FAIL
    assert "not migrated" in check.summary
    assert check.fix == "run `onboarding db upgrade`"


def test_migrated_database_is_ok(env: dict[str, str]) -> None:
    """A database at head passes."""
    assert check_database(load_settings()).status is Status.OK


def test_unknown_event_names_in_the_inbox_are_listed(env: dict[str, str], engine: Engine) -> None:
    """Event names we do not know are listed by name and count (cancellations are known)."""
    with session_scope(engine) as session:
        for n, name in enumerate(["channel_created", "channel_paused", "channel_paused", "x_y"]):
            store_inbound_event(session, dedup_key=f"k{n}", body="{}", headers={}, event_type=name)
        store_inbound_event(
            session, dedup_key="k9", body="{}", headers={}, event_type="channel_cancelled"
        )
    check = check_event_names(load_settings())
    assert check.status is Status.WARN
    assert check.details == ["channel_paused (2)", "x_y (1)"]


def test_prefect_unset_warns_and_unreachable_fails() -> None:
    """No PREFECT_API_URL is a warning pointing at `onboarding up`; a dead URL is a failure."""
    unset = check_prefect(None)
    assert unset.status is Status.WARN
    assert "onboarding up" in (unset.fix or "")
    dead = check_prefect(f"http://127.0.0.1:{free_port()}/api")
    assert dead.status is Status.FAIL


def test_alert_sinks_get_a_test_notice(env: dict[str, str], alert_sink: SinkServer) -> None:
    """Each sink gets one test notice; the check names the sink without its path token."""
    [check] = check_alert_sinks(load_settings())
    assert check.status is Status.OK
    assert len(alert_sink.received) == 1
    assert "test notice" in json.dumps(alert_sink.received[0])
    assert "s3cr3t" not in check.name


def test_a_failing_sink_fails_and_no_send_sends_nothing(
    env: dict[str, str], alert_sink: SinkServer
) -> None:
    """A sink answering 500 fails its check; with send=False nothing is sent."""
    alert_sink.fail_next(1)
    [check] = check_alert_sinks(load_settings())
    assert check.status is Status.FAIL
    assert "s3cr3t" not in check.model_dump_json()
    [skipped] = check_alert_sinks(load_settings(), send=False)
    assert skipped.status is Status.OK
    assert alert_sink.received == []


def test_doctor_all_good(
    env: dict[str, str], prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every server up, no check fails and `onboarding doctor --json` exits 0."""
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    statuses = {check.name: check.status for check in run_doctor(send=False)}
    assert Status.FAIL not in statuses.values()
    assert statuses["Prefect API"] is Status.OK
    result = CliRunner().invoke(app, ["doctor", "--json", "--no-send"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True


def test_doctor_broken_exits_1_with_fix_hints(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused credentials and a dead Prefect API print ✗ lines with fixes and exit 1."""
    monkeypatch.setenv("D360_API_KEY", "wrong-key-123")
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    result = CliRunner().invoke(app, ["doctor", "--no-send"])
    assert result.exit_code == 1
    assert "✗ Partner API" in result.stdout
    assert "→ check D360_API_KEY" in result.stdout
    assert "✓ history database" in result.stdout
    assert "wrong-key-123" not in result.stdout


def test_bad_settings_stop_the_doctor_early(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed setting is the one failure, naming the variable."""
    monkeypatch.setenv("D360_HUB_URL", "ftp://nope")
    result = CliRunner().invoke(app, ["doctor", "--no-send"])
    assert result.exit_code == 1
    assert "✗ settings: D360_HUB_URL" in result.stdout
