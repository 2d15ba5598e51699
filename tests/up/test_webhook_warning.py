"""The line `up` prints when the partner webhook URL is not this receiver's (sandbox)."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from onboarding.launcher.webhook_warning import webhook_warning
from onboarding.settings import load_hub_settings, load_settings
from tests.fixtures.sandbox import SandboxServer

TOKEN = "up-hook-token-0123456789"


@pytest.fixture
def hub(sandbox: SandboxServer):
    """Partner API settings pointing at the sandbox."""
    return load_hub_settings(
        hub_url=sandbox.api_url, partner_id=sandbox.partner_id, api_key=sandbox.api_key
    )


async def test_no_line_when_the_url_is_this_receivers(sandbox: SandboxServer, hub) -> None:
    """The registered URL carries this receiver's token under its public URL: nothing printed."""
    settings = load_settings(public_url="https://hooks.example", webhook_token=TOKEN)
    sandbox.set_webhook_url(f"https://hooks.example/hooks/360dialog/{TOKEN}")
    assert await webhook_warning(settings, hub, SecretStr(TOKEN)) is None


@pytest.mark.parametrize(
    "registered",
    [None, "https://hooks.example/hooks/360dialog/old-token-xyz1", "https://other.example/in"],
)
async def test_one_line_otherwise_without_the_token(
    sandbox: SandboxServer, hub, registered: str | None
) -> None:
    """Unset, another token or another URL: one line that says what to run; no token in it."""
    settings = load_settings(public_url="https://hooks.example", webhook_token=TOKEN)
    sandbox.set_webhook_url(registered)
    line = await webhook_warning(settings, hub, SecretStr(TOKEN))
    assert line is not None
    assert "\n" not in line
    assert "onboarding webhook register" in line
    assert TOKEN not in line
    assert "old-token-xyz1" not in line


async def test_unreadable_url_prints_nothing(sandbox: SandboxServer, hub) -> None:
    """A Partner API failure does not stop `up`: no line (doctor says more)."""
    sandbox.add_fault("status", count=1, http_status=404, path_contains="/webhook_url")
    assert await webhook_warning(load_settings(), hub, SecretStr(TOKEN)) is None


def test_demo_sets_each_numbers_webhook_on_the_sandbox(tmp_path, monkeypatch) -> None:
    """`up --demo` points the channel webhook at the sandbox's demo partner, children included."""
    from onboarding.launcher.run import DEMO_IGNORED, demo_settings, ignore_partner_settings

    for name in DEMO_IGNORED:  # ignore_partner_settings writes os.environ: restored afterwards
        monkeypatch.setenv(name, "")
    settings = demo_settings(load_settings(home=tmp_path, sandbox_port=8399))
    env: dict[str, str] = {}
    ignore_partner_settings(env, settings)
    assert env["ONBOARDING_CHANNEL_WEBHOOK_URL"].startswith("http://127.0.0.1:8399/sandbox/demo/")
    assert "{channel_id}" in env["ONBOARDING_CHANNEL_WEBHOOK_URL"]
    assert json.loads(env["ONBOARDING_CHANNEL_WEBHOOK_HEADERS"])
    assert load_settings(
        channel_webhook_url=env["ONBOARDING_CHANNEL_WEBHOOK_URL"],
        channel_webhook_headers=env["ONBOARDING_CHANNEL_WEBHOOK_HEADERS"],
        callback_url=settings.callback_url,
        callback_secret="x" * 8,
    )
