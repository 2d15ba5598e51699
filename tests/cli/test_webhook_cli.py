"""`onboarding webhook show|register` against the sandbox: the token never printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from onboarding.cli import app
from tests.fixtures.sandbox import SandboxServer

TOKEN = "hook-token-0123456789abcdef"
PUBLIC = "https://hooks.partner.example"
OURS = f"{PUBLIC}/hooks/360dialog/{TOKEN}"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray D360_*/ONBOARDING_* variables or .env file reach the command."""
    monkeypatch.chdir(tmp_path)
    for name in ("HUB_URL", "PARTNER_ID", "API_KEY", "USERNAME", "PASSWORD"):
        monkeypatch.delenv(f"D360_{name}", raising=False)
    for name in ("PUBLIC_URL", "WEBHOOK_TOKEN"):
        monkeypatch.delenv(f"ONBOARDING_{name}", raising=False)


def _env(sandbox: SandboxServer, **extra: str) -> dict[str, str]:
    return {
        **sandbox.credentials(),
        "ONBOARDING_PUBLIC_URL": PUBLIC,
        "ONBOARDING_WEBHOOK_TOKEN": TOKEN,
        **extra,
    }


def _run(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, ["webhook", *args], env=env, input=stdin)


def _registered(sandbox: SandboxServer) -> str | None:
    return sandbox.state.partners[sandbox.partner_id].webhook_url


def test_register_with_yes_sets_this_receivers_url(sandbox: SandboxServer) -> None:
    """`register --yes` sets public URL + hook path through the Partner API; token masked."""
    sandbox.set_webhook_url("https://old-host.example/hooks/360dialog/old-token-value")
    result = _run(_env(sandbox), "register", "--yes")
    assert result.exit_code == 0, result.output
    assert _registered(sandbox) == OURS
    counts = sandbox.request_counts()["counts"]
    assert counts["POST /partners/{partner_id}/webhook_url"] == 1
    assert "this receiver" in result.output
    assert TOKEN not in result.output
    assert "old-token-value" not in result.output
    assert "hook***" in result.output


def test_register_asks_and_a_no_changes_nothing(sandbox: SandboxServer) -> None:
    """Without --yes it asks; answering no leaves the URL alone and exits 1."""
    sandbox.set_webhook_url("https://old-host.example/x")
    result = _run(_env(sandbox), "register", stdin="n\n")
    assert result.exit_code == 1
    assert "Register it?" in result.output
    assert _registered(sandbox) == "https://old-host.example/x"
    yes = _run(_env(sandbox), "register", stdin="y\n")
    assert yes.exit_code == 0, yes.output
    assert _registered(sandbox) == OURS


def test_register_url_option(sandbox: SandboxServer) -> None:
    """--url registers that URL instead (no ONBOARDING_PUBLIC_URL needed)."""
    env = _env(sandbox)
    del env["ONBOARDING_PUBLIC_URL"]
    result = _run(env, "register", "--url", "https://relay.example/in", "--yes")
    assert result.exit_code == 0, result.output
    assert _registered(sandbox) == "https://relay.example/in"
    assert "not this receiver" in result.output


def test_register_without_public_url_says_which_variable(sandbox: SandboxServer) -> None:
    """No ONBOARDING_PUBLIC_URL and no --url: exit 3 naming the variable; nothing sent."""
    env = _env(sandbox)
    del env["ONBOARDING_PUBLIC_URL"]
    sandbox.reset_request_counts()
    result = _run(env, "register", "--yes")
    assert result.exit_code == 3
    assert "ONBOARDING_PUBLIC_URL" in result.output
    assert sandbox.request_counts()["total"] == 0


@pytest.mark.parametrize(
    ("registered", "match"),
    [
        (OURS, "ours"),
        (None, "not_set"),
        (f"{PUBLIC}/hooks/360dialog/another-token-9876", "other_token"),
        (f"https://elsewhere.example/hooks/360dialog/{TOKEN}", "other_host"),
        ("https://elsewhere.example/webhooks", "elsewhere"),
    ],
)
def test_show_says_whether_the_url_is_ours(
    sandbox: SandboxServer, registered: str | None, match: str
) -> None:
    """`show --json` compares the registered URL with this receiver's; the token never shows."""
    sandbox.set_webhook_url(registered)
    result = _run(_env(sandbox), "show", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["match"] == match
    assert data["ours"] is (match == "ours")
    assert TOKEN not in result.output
    assert "another-token-9876" not in result.output
    text = _run(_env(sandbox), "show")
    assert text.exit_code == 0
    assert TOKEN not in text.output
