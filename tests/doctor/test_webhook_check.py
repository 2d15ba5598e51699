"""`onboarding doctor` on the partner webhook URL: this receiver's or not, the token never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onboarding.cli import app
from onboarding.doctor import Status
from onboarding.doctor.webhook import check_partner_webhook
from onboarding.settings import load_hub_settings, load_settings
from tests.fixtures.sandbox import SandboxServer

TOKEN = "doctor-hook-token-abcdef123"
PUBLIC = "https://hooks.partner.example"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sandbox: SandboxServer, db_url: str):
    """The sandbox's credentials, this receiver's token and public URL; no sink, no Prefect."""
    monkeypatch.chdir(tmp_path)
    for name in ("USERNAME", "PASSWORD"):
        monkeypatch.delenv(f"D360_{name}", raising=False)
    values = {
        **sandbox.credentials(),
        "ONBOARDING_DATABASE_URL": db_url,
        "ONBOARDING_WEBHOOK_TOKEN": TOKEN,
        "ONBOARDING_PUBLIC_URL": PUBLIC,
        "ONBOARDING_ALERT_URLS": "",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.mark.parametrize(
    ("registered", "status", "words"),
    [
        (f"{PUBLIC}/hooks/360dialog/{TOKEN}", Status.OK, "this receiver"),
        (None, Status.WARN, "no partner webhook URL"),
        (f"{PUBLIC}/hooks/360dialog/stale-token-0000", Status.WARN, "another token"),
        (f"https://old.example/hooks/360dialog/{TOKEN}", Status.WARN, "ONBOARDING_PUBLIC_URL"),
    ],
)
async def test_check_compares_the_registered_url(
    env, sandbox: SandboxServer, registered: str | None, status: Status, words: str
) -> None:
    """One read of the webhook URL; ok only when it is this receiver's; token masked."""
    sandbox.set_webhook_url(registered)
    sandbox.reset_request_counts()
    check = await check_partner_webhook(load_hub_settings(), load_settings())
    assert check.status is status
    assert words in check.summary
    assert sandbox.request_counts()["counts"] == {"GET /partners/{partner_id}/webhook_url": 1}
    text = json.dumps(check.model_dump(mode="json"))
    assert TOKEN not in text
    assert "stale-token-0000" not in text
    if status is Status.WARN:
        assert "onboarding webhook register" in (check.fix or "") or "TOKEN" in (check.fix or "")


def test_doctor_command_reports_it(env, sandbox: SandboxServer) -> None:
    """`onboarding doctor --json` carries the check; the token is not in the output."""
    sandbox.set_webhook_url(f"https://old.example/hooks/360dialog/{TOKEN}")
    result = CliRunner().invoke(app, ["doctor", "--json", "--no-send"])
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["partner webhook URL"]["status"] == "warn"
    assert TOKEN not in result.output
    sandbox.set_webhook_url(f"{PUBLIC}/hooks/360dialog/{TOKEN}")
    result = CliRunner().invoke(app, ["doctor", "--json", "--no-send"])
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["partner webhook URL"]["status"] == "ok"
