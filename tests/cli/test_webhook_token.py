"""`onboarding receiver` and `up` refuse a guessable webhook token; the proxy setting (issue 20)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from onboarding.cli import app
from onboarding.launcher.receiver import webhook_token
from onboarding.settings import MIN_WEBHOOK_TOKEN, load_settings, require_strong_webhook_token

SHORT = "x" * (MIN_WEBHOOK_TOKEN - 1)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A private home and history database; no stray .env file."""
    monkeypatch.chdir(tmp_path)
    return {
        "ONBOARDING_HOME": str(tmp_path / "home"),
        "ONBOARDING_DATABASE_URL": f"sqlite:///{tmp_path / 'history.db'}",
        "ONBOARDING_WEBHOOK_TOKEN": SHORT,
    }


@pytest.mark.parametrize("command", [["receiver"], ["up"], ["up", "--demo"]])
def test_a_short_token_is_a_one_line_configuration_error(
    env: dict[str, str], command: list[str]
) -> None:
    """Exit 3 with one line naming the variable and the minimum; the token is never shown."""
    result = CliRunner().invoke(app, command, env=env)
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "ONBOARDING_WEBHOOK_TOKEN is too short" in lines[0]
    assert f"at least {MIN_WEBHOOK_TOKEN}" in lines[0]
    assert SHORT not in result.output


def test_a_token_of_22_characters_passes_and_up_makes_one_when_unset() -> None:
    """22 characters are enough; `up` without a token generates one that passes the same check."""
    require_strong_webhook_token(load_settings(webhook_token="y" * MIN_WEBHOOK_TOKEN).webhook_token)
    token, generated = webhook_token(load_settings(webhook_token=None))
    assert generated
    assert len(token.get_secret_value()) >= MIN_WEBHOOK_TOKEN
    require_strong_webhook_token(token)


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    """ONBOARDING_TRUSTED_PROXIES takes addresses and networks; anything else names the setting."""
    from onboarding.settings import ConfigError

    settings = load_settings(trusted_proxies="10.0.0.1, 192.168.0.0/16,::1")
    assert [str(n) for n in settings.trusted_proxy_networks] == [
        "10.0.0.1/32",
        "192.168.0.0/16",
        "::1/128",
    ]
    assert load_settings().trusted_proxy_networks == []
    with pytest.raises(ConfigError, match="ONBOARDING_TRUSTED_PROXIES"):
        load_settings(trusted_proxies="proxy.internal")
