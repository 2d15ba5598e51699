"""`onboarding channels` against the sandbox: output shapes and one-line errors with exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from onboarding.cli import app
from tests.fixtures.sandbox import SandboxServer
from tests.servers import free_port


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray D360_* variables or .env file reach the command."""
    monkeypatch.chdir(tmp_path)
    for name in ("HUB_URL", "PARTNER_ID", "API_KEY", "USERNAME", "PASSWORD"):
        monkeypatch.delenv(f"D360_{name}", raising=False)


def _run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, ["channels", *args], env=env)


def _sandbox_env(sandbox: SandboxServer, **overrides: str) -> dict[str, str]:
    return {**sandbox.credentials(), **overrides}


def test_json_lists_channels_with_their_statuses(sandbox: SandboxServer) -> None:
    """--json prints an array of channel objects with id, client_id, status, availability_status."""
    made = sandbox.create_channel(availability_status="ready", send_webhook=False)
    sandbox.create_channel(send_webhook=False)
    result = _run(_sandbox_env(sandbox), "--json")
    assert result.exit_code == 0, result.output
    channels = json.loads(result.stdout)
    assert len(channels) == 2
    for channel in channels:
        assert {"id", "client_id", "status", "availability_status"} <= channel.keys()
    by_id = {channel["id"]: channel for channel in channels}
    assert by_id[made["id"]]["availability_status"] == "ready"
    assert by_id[made["id"]]["client_id"] == made["client_id"]


def test_status_and_client_filters(sandbox: SandboxServer) -> None:
    """--status and --client narrow the list to the matching channels."""
    ready = sandbox.create_channel(availability_status="ready", send_webhook=False)
    other = sandbox.create_channel(availability_status="setting_up", send_webhook=False)
    env = _sandbox_env(sandbox)
    by_status = json.loads(_run(env, "--json", "--status", "ready").stdout)
    by_client = json.loads(_run(env, "--json", "--client", other["client_id"]).stdout)
    assert [c["id"] for c in by_status] == [ready["id"]]
    assert [c["id"] for c in by_client] == [other["id"]]


def test_table_masks_phone_numbers(sandbox: SandboxServer) -> None:
    """The table shows the channel with its phone number hidden except the last four digits."""
    made = sandbox.create_channel(phone_number="+4915198765432", send_webhook=False)
    result = _run(_sandbox_env(sandbox))
    assert result.exit_code == 0, result.output
    assert made["id"] in result.stdout
    assert "5432" in result.stdout
    assert "98765432" not in result.stdout


def test_wrong_key_is_one_line_and_exit_3(sandbox: SandboxServer) -> None:
    """Bad credentials print one error line (without the key) and exit 3."""
    result = _run(_sandbox_env(sandbox, D360_API_KEY="not-the-key"))
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "credentials" in lines[0]
    assert "not-the-key" not in result.output


def test_closed_port_is_exit_4() -> None:
    """A hub URL nobody listens on prints one line and exits 4 (hub unavailable)."""
    env = {
        "D360_HUB_URL": f"http://127.0.0.1:{free_port()}/api/v2",
        "D360_PARTNER_ID": "p1",
        "D360_API_KEY": "some-key",
    }
    result = _run(env)
    assert result.exit_code == 4
    assert len(result.stderr.strip().splitlines()) == 1
    assert "unavailable" in result.stderr


def test_missing_partner_id_is_exit_3(sandbox: SandboxServer) -> None:
    """Without D360_PARTNER_ID the command names the variable and exits 3."""
    env = _sandbox_env(sandbox)
    del env["D360_PARTNER_ID"]
    result = _run(env)
    assert result.exit_code == 3
    assert "D360_PARTNER_ID" in result.stderr
