"""The demo's partner callback inside the sandbox: it takes keys, and goes down on cue."""

from __future__ import annotations

import json

import httpx

from onboarding.sandbox import create_app
from tests.servers import serve_in_thread


def test_demo_callback_refuses_during_the_outage_and_records_key_ids_after() -> None:
    """While the demo has the callback down it answers 503; after, it records the key id only."""
    app = create_app()
    with serve_in_thread(app) as base:
        url = f"{base}/sandbox/demo/callback"
        body = json.dumps({"channel_id": "ch-1", "api_key_id": "k-1", "api_key": "secret-key"})
        app.state.demo_partner.on_demo_event("callback_outage_start")
        assert httpx.post(url, content=body).status_code == 503
        app.state.demo_partner.on_demo_event("callback_outage_end")
        assert httpx.post(url, content=body).status_code == 200
        status = httpx.get(url).json()
    assert status == {"down": False, "received": {"ch-1": ["k-1"]}}
    assert "secret-key" not in json.dumps(status)
