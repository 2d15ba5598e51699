"""`onboarding receiver`: the webhook receiver on its own, from the settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from sqlmodel import select

from onboarding.store import InboundEvent, make_engine, session_scope
from tests.e2e.helpers import wait_for
from tests.servers import free_port

pytestmark = pytest.mark.slow


def test_receiver_command_stores_and_answers_on_the_configured_port(onboarding_env, db_url):
    """The command binds ONBOARDING_RECEIVER_HOST/PORT, answers a webhook 202 and keeps it in the
    inbox, and refuses a wrong token."""
    port = free_port()
    env = {
        **os.environ,
        **onboarding_env,
        "ONBOARDING_WEBHOOK_TOKEN": "receiver-cli-token-0123456789",
        "ONBOARDING_RECEIVER_HOST": "127.0.0.1",
        "ONBOARDING_RECEIVER_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "onboarding.cli", "receiver"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return process.poll() is not None

        wait_for(healthy, what="the receiver to answer", timeout=60)
        assert process.poll() is None
        body = json.dumps({"event": "client_created", "data": {"id": "cl-receiver-cli"}})
        answer = httpx.post(f"{base}/hooks/360dialog/receiver-cli-token-0123456789", content=body)
        assert answer.status_code == 202
        wrong = httpx.post(f"{base}/hooks/360dialog/not-the-token", content=body)
        assert wrong.status_code in (401, 404)
        with session_scope(make_engine(db_url)) as session:
            statement = select(InboundEvent).where(InboundEvent.client_id == "cl-receiver-cli")
            rows = list(session.exec(statement))
        assert len(rows) == 1
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    assert "receiver-cli-token-0123456789" not in output
