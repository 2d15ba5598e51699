"""The path token stays secret: never logged, never stored, and required by the configuration."""

from __future__ import annotations

import logging

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from onboarding.receiver import create_app, create_app_from_settings, serve_config
from onboarding.settings import ConfigError, load_settings
from tests.receiver.conftest import StartReceiver
from tests.receiver.support import TOKEN, RecordingHandoff, envelope, serve_receiver

ONE_BACKEND = pytest.mark.parametrize("test_database", ["sqlite"], indirect=True)
CLIENT_LOGGERS = ("httpx", "httpcore")  # the test's own client logs the URL it calls


def test_token_never_reaches_logs_or_the_inbox(
    start_receiver: StartReceiver,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Across good, failing, malformed and oversized deliveries the token is in no log or row."""
    # An earlier server may have cut the access logger off; let it reach caplog if it is ever on.
    monkeypatch.setattr(logging.getLogger("uvicorn.access"), "propagate", True)
    caplog.set_level(logging.DEBUG)
    handoff = RecordingHandoff(error=RuntimeError(f"prefect refused /hooks/360dialog/{TOKEN}"))
    receiver = start_receiver(handoff, log_level="debug", max_bytes=2048)
    relay_headers = {"X-Original-URI": f"/hooks/360dialog/{TOKEN}", "X-Request-Id": "r-1"}

    good = receiver.post(envelope(), headers=relay_headers)
    receiver.settled(good.json()["inbox_id"], "failed")
    assert receiver.post(b"{oops").status_code == 400
    assert receiver.post(b" " * 4096).status_code == 413
    assert receiver.post(envelope(), token=TOKEN + "x").status_code == 404

    server_records = [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]
    messages = [record.getMessage() for record in server_records]
    assert any(m.startswith("inbox #1 channel_created channel=ch-1 -> failed") for m in messages)
    assert any(record.name.startswith("uvicorn") for record in server_records)
    assert [m for m in messages if TOKEN in m] == []
    rows = receiver.rows()
    assert len(rows) == 3
    for row in rows:
        stored = f"{row.body} {row.headers} {row.error}"
        assert TOKEN not in stored
    assert rows[0].headers["x-request-id"] == "r-1"
    assert "x-original-uri" not in rows[0].headers
    assert rows[0].error == "RuntimeError: prefect refused /hooks/360dialog/***"


def test_serve_config_keeps_the_access_log_off() -> None:
    """serve_config never enables uvicorn's access log, even when asked to."""
    app = object()
    assert serve_config(app, "127.0.0.1", 8080).access_log is False
    assert serve_config(app, "127.0.0.1", 8080, access_log=True).access_log is False


@ONE_BACKEND
def test_settings_without_a_token_are_refused(engine: Engine) -> None:
    """Building the receiver from settings without ONBOARDING_WEBHOOK_TOKEN names the variable."""
    with pytest.raises(ConfigError, match="ONBOARDING_WEBHOOK_TOKEN"):
        create_app_from_settings(load_settings(webhook_token=None), handoff=None, engine=engine)
    with pytest.raises(ValueError, match="must not be empty"):
        create_app(engine=engine, token=SecretStr(""), handoff=None)


@ONE_BACKEND
def test_settings_configure_token_and_size_limit(engine: Engine) -> None:
    """A receiver built from settings answers on the settings' token and enforces their limit."""
    settings = load_settings(webhook_token="from-settings", webhook_max_bytes=1024)
    app = create_app_from_settings(settings, handoff=None, engine=engine)
    with serve_receiver(app) as base, httpx.Client(timeout=15) as client:
        url = f"{base}/hooks/360dialog/from-settings"
        assert client.post(url, content=envelope()).status_code == 202
        assert client.post(url, content=b" " * 1025).status_code == 413
