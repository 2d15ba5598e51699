"""Without PREFECT_API_URL, the temporary Prefect server a command runs requires credentials."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from onboarding.launcher.auth import lock_temporary_server

# Starts the temporary server the way `onboarding sweep` and `onboarding onboard` do, then asks
# it for flows twice: with Prefect's client (which sends the auth string) and without credentials.
PROBE = """
import asyncio, json, os
from onboarding.launcher.auth import lock_temporary_server
lock_temporary_server(os.environ)
import httpx
from prefect import get_client

async def main():
    async with get_client() as client:
        await client.read_flows(limit=1)
        url = str(client.api_url).rstrip("/") + "/flows/filter"
        anonymous = httpx.post(url, json={}, timeout=10).status_code
    print(json.dumps({"anonymous": anonymous}))

asyncio.run(main())
"""


@pytest.mark.slow
def test_temporary_server_refuses_requests_without_the_auth_string(tmp_path):
    """The command's own client gets through; a request without credentials gets 401."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_API", "PREFECT_SERVER_API", "PREFECT_SERVER_ANALYTICS"))
    }
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"anonymous": 401}


def test_an_explicit_api_or_server_auth_string_is_left_alone():
    """A configured Prefect API, or an auth string already set, is never replaced."""
    with_api = {"PREFECT_API_URL": "http://127.0.0.1:4200/api"}
    lock_temporary_server(with_api)
    assert with_api == {"PREFECT_API_URL": "http://127.0.0.1:4200/api"}
    with_string = {"PREFECT_SERVER_API_AUTH_STRING": "mine"}
    lock_temporary_server(with_string)
    assert with_string == {"PREFECT_SERVER_API_AUTH_STRING": "mine"}
    fresh: dict[str, str] = {}
    lock_temporary_server(fresh)
    assert fresh["PREFECT_API_AUTH_STRING"] == fresh["PREFECT_SERVER_API_AUTH_STRING"]
    assert fresh["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert len(fresh["PREFECT_API_AUTH_STRING"]) >= 32
