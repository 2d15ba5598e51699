"""Scripted channel lifecycles and status changes through the control API."""

from __future__ import annotations

import httpx

from onboarding.sandbox import SANDBOX_PARTNER_ID, create_app
from tests.fixtures.sandbox import SandboxServer
from tests.polling import wait_for
from tests.servers import serve_in_thread

CHANNELS = f"/partners/{SANDBOX_PARTNER_ID}/channels"


def _read(api: httpx.Client, channel_id: str) -> dict:
    """The channel as the Partner API lists it."""
    page = api.get(CHANNELS, params={"filters": f'{{"id": "{channel_id}"}}'}).json()
    return page["partner_channels"][0]


def test_channel_settles_ready(sandbox: SandboxServer, api: httpx.Client) -> None:
    """A channel scripted to settle becomes ready (status ready) and modified_at moves on."""
    channel = sandbox.create_channel(settle_after=0.2)

    ready = wait_for(
        lambda: (c := _read(api, channel["id"]))["availability_status"] == "ready" and c
    )

    assert ready["status"] == "ready"
    assert ready["setup_info"]["error"] is None
    assert ready["modified_at"] > channel["modified_at"]


def test_channel_settles_error(sandbox: SandboxServer, api: httpx.Client) -> None:
    """A channel scripted to fail ends with availability and status error and an error text."""
    channel = sandbox.create_channel(settle_after=0.1, settle_to="error", error="Name rejected")

    failed = wait_for(
        lambda: (c := _read(api, channel["id"]))["availability_status"] == "error" and c
    )

    assert failed["status"] == "error"
    assert failed["setup_info"]["error"] == "Name rejected"


def test_setting_up_walks_intermediate_statuses(sandbox: SandboxServer) -> None:
    """While setting up, status walks created -> unverified -> verified -> ready."""
    channel = sandbox.create_channel(settle_after=1.5)
    seen = [channel["status"]]

    def record() -> bool:
        current = sandbox.channel(channel["id"])
        if current["status"] != seen[-1]:
            seen.append(current["status"])
        return current["availability_status"] == "ready"

    wait_for(record, interval=0.01)

    assert seen == ["created", "unverified", "verified", "ready"]


def test_status_set_now(sandbox: SandboxServer, api: httpx.Client) -> None:
    """The control API changes a channel at once, accepting unknown availability values."""
    channel = sandbox.create_channel()

    response = sandbox.control.post(
        f"/channels/{channel['id']}/status", json={"availability_status": "migrating"}
    )
    listed = api.get(CHANNELS, params={"filters": '{"availability_status": "migrating"}'})

    assert response.status_code == 200
    assert [c["id"] for c in listed.json()["partner_channels"]] == [channel["id"]]


def test_status_scheduled(sandbox: SandboxServer, api: httpx.Client) -> None:
    """A status change with 'after' answers 202 and happens later."""
    channel = sandbox.create_channel()

    response = sandbox.control.post(
        f"/channels/{channel['id']}/status", json={"availability_status": "ready", "after": 0.2}
    )

    assert response.status_code == 202
    assert _read(api, channel["id"])["availability_status"] == "setting_up"
    wait_for(lambda: _read(api, channel["id"])["availability_status"] == "ready")


def test_reset_cancels_scheduled_changes(sandbox: SandboxServer) -> None:
    """A reset drops pending lifecycle timers along with the channels."""
    sandbox.create_channel(id="doomed", settle_after=0.2)

    armed = len(sandbox.state.timers)
    sandbox.reset()

    assert armed > 0
    assert not sandbox.state.timers


def test_demo_scenario_seeds_and_shuts_down() -> None:
    """The demo scenario seeds clients and channels, one already ready, and stops cleanly."""
    app = create_app(scenario="demo")
    with serve_in_thread(app) as url:
        page = httpx.get(
            f"{url}/api/v2{CHANNELS}", headers={"X-API-Key": "sandbox-key"}, params={"limit": 50}
        ).json()

    statuses = [c["availability_status"] for c in page["partner_channels"]]
    assert page["total"] >= 5
    assert "ready" in statuses
    assert statuses.count("setting_up") >= 4
    assert not app.state.sandbox.timers


def test_demo_scenario_has_a_permission_wait_and_an_outage_hook() -> None:
    """The demo seeds a channel waiting for key permission, and arms the callback-outage hook."""
    events: list[str] = []
    app = create_app(scenario="demo", on_demo_event=events.append)
    with serve_in_thread(app):
        state = app.state.sandbox
        pending = set(state.permission_pending)
        armed = len(state.timers)

    assert len(pending) == 1
    assert armed >= 2 + 2  # the permission client's settle walk/grant and the outage start/end
    assert events == []  # the outage starts minutes in, long after this test


def test_without_status_seeds_channels_lacking_availability_status() -> None:
    """create_app(without_status=2) seeds two channels whose objects have no availability_status."""
    app = create_app(without_status=2)
    with serve_in_thread(app) as url:
        page = httpx.get(f"{url}/api/v2{CHANNELS}", headers={"X-API-Key": "sandbox-key"}).json()

    assert page["total"] == 2
    assert all("availability_status" not in channel for channel in page["partner_channels"])
