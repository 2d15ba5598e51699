"""Partner webhooks: what the sandbox sends to the partner's URL, and what it records."""

from __future__ import annotations

from datetime import datetime

import httpx

from onboarding.sandbox import SANDBOX_PARTNER_ID
from tests.fixtures.sandbox import SandboxServer
from tests.polling import wait_for
from tests.sandbox.receiver import WebhookReceiver
from tests.servers import free_port


def test_new_channel_sends_client_and_channel_created(
    sandbox: SandboxServer, receiver: WebhookReceiver
) -> None:
    """Creating a channel for a new client sends client_created then channel_created."""
    channel = sandbox.create_channel()

    wait_for(lambda: len(receiver.bodies) >= 2)

    first, second = receiver.bodies
    assert first == {"event": "client_created", "data": sandbox.state.clients[channel["client_id"]]}
    assert second["event"] == "channel_created"
    assert second["data"]["id"] == channel["id"]
    assert second["data"]["availability_status"] == "setting_up"


def test_settling_sends_submitted_ready_then_running(
    sandbox: SandboxServer, receiver: WebhookReceiver
) -> None:
    """A settling channel sends channel_submitted, then channel_ready, then channel_running."""
    channel = sandbox.create_channel(settle_after=0.1)

    wait_for(lambda: len(receiver.bodies) >= 5)

    assert receiver.events() == [
        "client_created",
        "channel_created",
        "channel_submitted",
        "channel_ready",
        "channel_running",
    ]
    assert receiver.bodies[2]["data"]["status"] == "unverified"
    ready = receiver.bodies[3]["data"]
    assert (ready["id"], ready["availability_status"]) == (channel["id"], "ready")


def test_running_and_live_follow_ready_at_their_own_moments(
    sandbox: SandboxServer, receiver: WebhookReceiver
) -> None:
    """With running_after/live_after set, channel_running and channel_live come later, in order."""
    sandbox.configure(running_after=0.2, live_after=0.4)
    channel = sandbox.create_channel(send_webhook=False)
    sandbox.set_status(channel["id"], "ready")

    records = wait_for(lambda: (found := sandbox.webhooks()) and len(found) >= 3 and found)

    assert [r["event"] for r in records] == ["channel_ready", "channel_running", "channel_live"]
    assert {r["object_id"] for r in records} == {channel["id"]}
    at = [datetime.fromisoformat(r["at"]) for r in records]
    assert (at[1] - at[0]).total_seconds() >= 0.15
    assert (at[2] - at[0]).total_seconds() >= 0.35


def test_lost_webhook_is_not_sent(sandbox: SandboxServer, receiver: WebhookReceiver) -> None:
    """send_webhook=false creates the channel silently, as if the webhook were lost."""
    silent = sandbox.create_channel(send_webhook=False)
    sandbox.create_client(name="marker")

    wait_for(lambda: receiver.events() == ["client_created"])

    assert receiver.bodies[0]["data"]["name"] == "marker"
    assert silent["id"] in sandbox.state.channels


def test_deliveries_are_recorded(sandbox: SandboxServer, receiver: WebhookReceiver) -> None:
    """Every delivery is recorded with its event, URL and the receiver's HTTP status."""
    receiver.status_code = 500
    client = sandbox.create_client()

    records = wait_for(sandbox.webhooks)

    assert records[0]["event"] == "client_created"
    assert records[0]["url"] == receiver.url
    assert records[0]["status_code"] == 500
    assert records[0]["object_id"] == client["id"]
    assert records[0]["error"] is None


def test_unreachable_url_is_recorded_not_raised(sandbox: SandboxServer) -> None:
    """A delivery to a dead URL is recorded with its error and the sandbox keeps working."""
    sandbox.set_webhook_url(f"http://127.0.0.1:{free_port()}/hook")
    sandbox.create_client()

    records = wait_for(sandbox.webhooks)

    assert records[0]["status_code"] is None
    assert "ConnectError" in records[0]["error"]
    assert sandbox.control.get("/healthz").status_code == 200


def test_webhook_url_round_trip(sandbox: SandboxServer, api: httpx.Client) -> None:
    """POST /webhook_url sets the URL that GET /webhook_url and the partner object report."""
    path = f"/partners/{SANDBOX_PARTNER_ID}/webhook_url"

    posted = api.post(path, json={"webhook_url": "https://partner.example.com/hook"})

    assert posted.status_code == 200
    assert api.get(path).json() == {"webhook_url": "https://partner.example.com/hook"}
    partner = api.get(f"/partners/{SANDBOX_PARTNER_ID}").json()
    assert partner["webhook_url"] == "https://partner.example.com/hook"
    assert api.post(path, json={"webhook_url": "ftp://nope"}).status_code == 400
