"""Injected faults: status codes with Retry-After, slow answers, malformed bodies."""

from __future__ import annotations

import json

import httpx
import pytest

from onboarding.sandbox import SANDBOX_PARTNER_ID
from tests.fixtures.sandbox import SandboxServer

CHANNELS = f"/partners/{SANDBOX_PARTNER_ID}/channels"
CLIENTS = f"/partners/{SANDBOX_PARTNER_ID}/clients"


def test_429_carries_retry_after(sandbox: SandboxServer, api: httpx.Client) -> None:
    """A 429 fault answers with Retry-After and the error envelope, once."""
    sandbox.add_fault("status", http_status=429, retry_after=7)

    limited = api.get(CHANNELS)
    after = api.get(CHANNELS)

    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    assert limited.json()["meta"]["http_code"] == 429
    assert after.status_code == 200


@pytest.mark.parametrize("http_status", [500, 503])
def test_server_errors_for_next_n_requests(
    sandbox: SandboxServer, api: httpx.Client, http_status: int
) -> None:
    """A status fault with count N fails exactly the next N requests."""
    sandbox.add_fault("status", count=2, http_status=http_status)

    codes = [api.get(CHANNELS).status_code for _ in range(3)]

    assert codes == [http_status, http_status, 200]


def test_fault_only_hits_matching_path(sandbox: SandboxServer, api: httpx.Client) -> None:
    """path_contains limits a fault to the requests whose path contains it."""
    sandbox.add_fault("status", http_status=500, path_contains="/clients")

    assert api.get(CHANNELS).status_code == 200
    assert api.get(CLIENTS).status_code == 500
    assert api.get(CLIENTS).status_code == 200


def test_slow_fault_outlasts_a_short_timeout(sandbox: SandboxServer) -> None:
    """A slow fault delays the answer past a client's read timeout, then service is normal."""
    sandbox.add_fault("slow", delay=1.0)
    headers = {"X-API-Key": sandbox.api_key}

    with httpx.Client(base_url=sandbox.api_url, headers=headers, timeout=0.2) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            impatient.get(CHANNELS)
        assert impatient.get(CHANNELS).status_code == 200


def test_slow_fault_still_answers(sandbox: SandboxServer, api: httpx.Client) -> None:
    """A slow request is answered normally once the delay has passed."""
    sandbox.add_fault("slow", delay=0.1)

    response = api.get(CHANNELS)

    assert response.status_code == 200
    assert response.json()["total"] == 0


def test_malformed_fault_returns_non_json(sandbox: SandboxServer, api: httpx.Client) -> None:
    """A malformed fault answers 200 with a body that is not JSON."""
    sandbox.add_fault("malformed")

    response = api.get(CHANNELS)

    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_faulted_requests_are_counted(sandbox: SandboxServer, api: httpx.Client) -> None:
    """Requests answered by a fault still count towards the request counters."""
    sandbox.add_fault("status", count=2, http_status=503)

    for _ in range(3):
        api.get(CHANNELS)

    assert sandbox.request_counts()["counts"] == {"GET /partners/{partner_id}/channels": 3}


def test_clearing_faults(sandbox: SandboxServer, api: httpx.Client) -> None:
    """DELETE /sandbox/faults drops queued faults."""
    sandbox.add_fault("status", count=5, http_status=500)

    sandbox.clear_faults()

    assert api.get(CHANNELS).status_code == 200


def test_unknown_fault_kind_is_refused(sandbox: SandboxServer) -> None:
    """The control API refuses a fault kind it does not know."""
    response = sandbox.control.post("/faults", json={"kind": "explode", "count": 1})

    assert response.status_code == 400
