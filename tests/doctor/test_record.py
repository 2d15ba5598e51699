"""`onboarding doctor --record DIR` against the sandbox over a real socket: redacted answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onboarding.cli import app
from onboarding.doctor.partner import check_partner_api
from onboarding.doctor.record import redact
from onboarding.settings import HubSettings
from tests.fixtures.sandbox import SandboxServer

PHONES = ["+4915112345678", "+1 (415) 555-0199"]
WEBHOOK = "https://partner.example/hooks/360dialog/receiver-path-token-9Zx"


def _seed(sandbox: SandboxServer) -> list[str]:
    """Two channels with known phone numbers, and a webhook URL holding a token."""
    ids = [sandbox.create_channel(phone_number=phone, send_webhook=False)["id"] for phone in PHONES]
    sandbox.set_webhook_url(WEBHOOK)
    return ids


def _settings(sandbox: SandboxServer, auth: str) -> HubSettings:
    if auth == "api-key":
        return HubSettings(
            hub_url=sandbox.api_url, partner_id=sandbox.partner_id, api_key=sandbox.api_key
        )
    return HubSettings(
        hub_url=sandbox.api_url,
        partner_id=sandbox.partner_id,
        username=sandbox.username,
        password=sandbox.password,
    )


def _files(directory: Path) -> list[Path]:
    """The recorded files, in the order the calls were made."""
    return sorted(directory.glob("*.json"))


def _forbidden(sandbox: SandboxServer) -> list[str]:
    """Every secret and phone number that must not appear in a recording."""
    tokens = list(sandbox.state.tokens)
    digits = ["4915112345678", "12345678", "4155550199", "555-0199"]
    return [sandbox.api_key, sandbox.password, "receiver-path-token-9Zx", *tokens, *digits]


@pytest.mark.parametrize("auth", ["api-key", "bearer"])
async def test_every_call_is_recorded_without_secrets_or_phone_numbers(
    sandbox: SandboxServer, tmp_path: Path, auth: str
) -> None:
    """One JSON file per call, ids kept, and no credential, token or phone number in any file."""
    ids = _seed(sandbox)

    checks = await check_partner_api(_settings(sandbox, auth), record_dir=tmp_path)

    files = _files(tmp_path)
    paths = [json.loads(path.read_text())["path"] for path in files]
    expected = [
        f"/api/v2/partners/{sandbox.partner_id}/channels",
        f"/api/v2/partners/{sandbox.partner_id}",
        f"/api/v2/partners/{sandbox.partner_id}/clients",
        f"/api/v2/partners/{sandbox.partner_id}/webhook_url",
    ]
    assert paths == (["/api/v2/token"] if auth == "bearer" else []) + expected
    text = "\n".join(path.read_text() for path in files)
    for secret in _forbidden(sandbox):
        assert secret not in text, f"{secret!r} leaked into the recording"
    assert all(channel_id in text for channel_id in ids)
    assert checks[-1].name == "Partner API answers recorded"
    assert str(tmp_path) in checks[-1].summary


async def test_a_recorded_file_holds_method_status_headers_and_body(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Each file says method, path, query, status, redacted headers and the redacted body."""
    _seed(sandbox)

    await check_partner_api(_settings(sandbox, "api-key"), limit=7, record_dir=tmp_path)

    record = json.loads(_files(tmp_path)[0].read_text())
    assert (record["method"], record["status"]) == ("GET", 200)
    assert record["query"] == {"limit": "7", "offset": "0"}
    assert record["headers"]["content-type"] == "application/json"
    channel = record["body"]["partner_channels"][0]
    assert channel["setup_info"]["phone_number"].endswith(("5678", "0199"))
    assert "*" in channel["setup_info"]["phone_number"]
    assert channel["client"]["contact_info"]["email"].startswith("***@")


def test_doctor_cli_takes_record(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`onboarding doctor --record DIR` writes the recording and names the directory."""
    _seed(sandbox)
    monkeypatch.chdir(tmp_path)
    for name, value in {
        **sandbox.credentials(),
        "ONBOARDING_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}",
        "ONBOARDING_ALERT_URLS": "",
    }.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "answers"

    result = CliRunner().invoke(app, ["doctor", "--no-send", "--json", "--record", str(out)])

    names = [check["name"] for check in json.loads(result.output)["checks"]]
    assert "Partner API answers recorded" in names
    assert len(list(out.glob("*.json"))) == 4
    assert sandbox.api_key not in result.output


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"api_key": "abc"}, {"api_key": "***"}, id="secret-field"),
        pytest.param({"access_token": "abc"}, {"access_token": "***"}, id="token-field"),
        pytest.param({"id": "102290129340398"}, {"id": "102290129340398"}, id="numeric-id-kept"),
        pytest.param({"note": "+49 151 2345678"}, {"note": "+** *** ***5678"}, id="phone-value"),
        pytest.param({"email": "a.b@shop.example"}, {"email": "***@shop.example"}, id="email"),
        pytest.param(
            {"url": "https://h.example/x/tok"}, {"url": "https://h.example/***"}, id="url"
        ),
        pytest.param({"x": "has sk-123 inside"}, {"x": "has *** inside"}, id="known-secret"),
    ],
)
def test_redact_masks_secrets_and_personal_data_keeps_ids(value: object, expected: object) -> None:
    """redact() masks by field name and by value, and keeps ids whatever they look like."""
    assert redact(value, ["sk-123"]) == expected
