"""The signup redirect, over real sockets: the sandbox plays the browser and the Partner API."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from ipaddress import ip_network
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from onboarding.receiver.signup import SIGNUP_PATH, hub_factory, signup_route
from onboarding.settings import HubSettings
from onboarding.store import InboundEvent
from tests.fixtures.sandbox import SandboxServer
from tests.receiver.conftest import StartReceiver
from tests.receiver.support import RecordingHandoff, Served, wait_until

PARTNER_PAGE = "https://partner.example/welcome"

Start = Callable[..., Served]


@pytest.fixture
def start_signup(
    start_receiver: StartReceiver,
    engine: Engine,
    sandbox: SandboxServer,
    handoff: RecordingHandoff,
) -> Start:
    """Start a receiver whose signup route verifies ids against the sandbox."""

    hub = hub_factory(
        HubSettings(hub_url=sandbox.api_url, partner_id=sandbox.partner_id, api_key=sandbox.api_key)
    )

    def start(**options: Any) -> Served:
        options.setdefault("redirect", PARTNER_PAGE)
        route = signup_route(engine=engine, handoff=handoff, hub=hub, **options)
        return start_receiver(handoff, signup=route)

    return start


def _browser(sandbox: SandboxServer, served: Served, **body: Any) -> dict[str, Any]:
    """The sandbox signs a client up and sends its 'browser' to the receiver's signup URL."""
    body.setdefault("redirect_url", served.base + SIGNUP_PATH)
    response = sandbox.control.post("/signup", json={"call": True, **body})
    response.raise_for_status()
    return response.json()


def _rows(served: Served) -> list[InboundEvent]:
    return [row for row in served.rows() if row.event_type == "signup_redirect"]


def _request_row(served: Served) -> InboundEvent:
    """The settled row of the (one) redirect request: the one without a channel id."""

    def probe() -> InboundEvent | None:
        rows = [row for row in _rows(served) if row.channel_id is None]
        return rows[0] if rows and rows[0].outcome != "accepted" else None

    return wait_until(probe, what="the signup request to be processed")


def test_both_channels_are_handed_off_and_the_query_string_survives(
    start_signup: Start, sandbox: SandboxServer, handoff: RecordingHandoff
) -> None:
    """channels=[a,b] hands both verified channels on and answers 303 with the query intact."""
    served = start_signup()

    signed_up = _browser(sandbox, served, channels=2)

    query = signed_up["redirect_url"].split("?", 1)[1]
    assert signed_up["called"]["status_code"] == 303
    assert signed_up["called"]["location"] == f"{PARTNER_PAGE}?{query}"
    wait_until(lambda: len(handoff.calls) == 2, what="two handoffs")
    assert sorted(call.channel_id for call in handoff.calls) == sorted(signed_up["channel_ids"])
    assert {call.event_type for call in handoff.calls} == {"signup_redirect"}
    assert {call.client_id for call in handoff.calls} == {signed_up["client_id"]}
    assert {call.data["id"] for call in handoff.calls} == set(signed_up["channel_ids"])
    assert _request_row(served).outcome == "handled"


def test_forged_and_foreign_ids_are_recorded_not_handed_off(
    start_signup: Start, sandbox: SandboxServer, handoff: RecordingHandoff
) -> None:
    """A made-up id, another client's channel and a malformed id get the 303 and are recorded."""
    served = start_signup()
    other = sandbox.create_channel(send_webhook=False)
    mine = sandbox.create_client(send_webhook=False)
    real = sandbox.create_channel(client_id=mine["id"], send_webhook=False)
    channels = f"[{real['id']}, forged0001,{other['id']},bad<id>]"
    url = f"{served.base}{SIGNUP_PATH}?client={mine['id']}&channels={channels}&revoked="

    answer = served.client.get(url)

    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"{PARTNER_PAGE}?client={mine['id']}")
    row = _request_row(served)
    assert [call.channel_id for call in handoff.calls] == [real["id"]]
    assert row.outcome == "handled"
    assert "'forged0001' (not a channel of this client)" in (row.error or "")
    assert f"'{other['id']}' (not a channel of this client)" in (row.error or "")
    assert "'bad<id>' (malformed id)" in (row.error or "")


def test_only_forged_ids_mark_the_request_rejected(
    start_signup: Start, sandbox: SandboxServer, handoff: RecordingHandoff
) -> None:
    """When no id checks out the request row is rejected with the reason, and nothing starts."""
    served = start_signup()
    client = sandbox.create_client(send_webhook=False)

    answer = served.client.get(
        f"{served.base}{SIGNUP_PATH}", params={"client": client["id"], "channels": "[nope1]"}
    )

    assert answer.status_code == 303
    row = _request_row(served)
    assert row.outcome == "rejected"
    assert "not a channel of this client" in (row.error or "")
    assert handoff.calls == []


def test_malformed_client_gets_the_same_303_and_a_rejected_row(
    start_signup: Start, handoff: RecordingHandoff
) -> None:
    """A client id outside the safe charset is answered 303 like any other and recorded rejected."""
    served = start_signup()

    answer = served.client.get(
        f"{served.base}{SIGNUP_PATH}", params={"client": "<script>", "channels": "[a]"}
    )

    assert answer.status_code == 303
    (row,) = _rows(served)
    assert (row.outcome, row.error) == ("rejected", "malformed or missing client id")
    assert handoff.calls == []


def test_without_a_redirect_the_client_sees_an_escaped_page(start_signup: Start) -> None:
    """With ONBOARDING_SIGNUP_REDIRECT unset the browser gets a page saying the number is set up."""
    served = start_signup(redirect=None)

    answer = served.client.get(
        f"{served.base}{SIGNUP_PATH}", params={"client": "<b>x</b>", "channels": "[]"}
    )

    assert answer.status_code == 200
    assert "being set up" in answer.text
    assert "<b>x</b>" not in answer.text


def test_the_same_redirect_twice_is_handed_off_once(
    start_signup: Start, sandbox: SandboxServer, handoff: RecordingHandoff
) -> None:
    """A browser reload of the same URL is answered again but starts nothing new."""
    served = start_signup()
    signed_up = _browser(sandbox, served, channels=1)
    wait_until(lambda: handoff.calls, what="the first handoff")
    _request_row(served)

    again = httpx.get(signed_up["redirect_url"])

    assert again.status_code == 303
    assert len(handoff.calls) == 1
    assert len(_rows(served)) == 2  # the request and its one channel


def test_two_hundred_requests_from_one_ip_are_throttled(
    start_signup: Start, sandbox: SandboxServer, handoff: RecordingHandoff
) -> None:
    """200 requests from one IP all get their 303, but only the first ~30 are stored or verified."""
    served = start_signup(rate_limit=30)
    client = sandbox.create_client(send_webhook=False)
    channel = sandbox.create_channel(client_id=client["id"], send_webhook=False)
    sandbox.reset_request_counts()
    began = time.monotonic()

    statuses = [
        served.client.get(
            f"{served.base}{SIGNUP_PATH}",
            params={"client": client["id"], "channels": f"[{channel['id']}]", "n": str(n)},
        ).status_code
        for n in range(200)
    ]

    refilled = math.ceil((time.monotonic() - began) * 30 / 60)  # the bucket refills meanwhile
    assert set(statuses) == {303}
    stored = [row for row in _rows(served) if row.channel_id is None]
    assert 30 <= len(stored) <= 30 + refilled
    assert len(stored) < 100
    wait_until(lambda: all(row.outcome != "accepted" for row in _rows(served)), what="processing")
    lookups = sandbox.request_counts()["counts"].get("GET /partners/{partner_id}/channels", 0)
    assert len(stored) <= lookups <= 2 * len(stored)  # at most 2 Partner API calls per signup


def _stored_requests(served: Served) -> list[InboundEvent]:
    return [row for row in _rows(served) if row.channel_id is None]


def _channel_lookups(sandbox: SandboxServer) -> int:
    return sandbox.request_counts()["counts"].get("GET /partners/{partner_id}/channels", 0)


def test_forwarded_for_is_ignored_without_trusted_proxies(
    start_signup: Start, sandbox: SandboxServer
) -> None:
    """40 requests claiming 40 addresses from one peer share that peer's limit (30)."""
    served = start_signup(rate_limit=30)
    client = sandbox.create_client(send_webhook=False)
    began = time.monotonic()

    statuses = [
        served.client.get(
            f"{served.base}{SIGNUP_PATH}",
            params={"client": client["id"], "channels": "[]", "n": str(n)},
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
        ).status_code
        for n in range(40)
    ]

    refilled = math.ceil((time.monotonic() - began) * 30 / 60)
    assert set(statuses) == {303}
    assert 30 <= len(_stored_requests(served)) <= 30 + refilled < 40


def test_a_trusted_proxy_names_the_client_address(
    start_signup: Start, sandbox: SandboxServer
) -> None:
    """From a trusted proxy, the right-most untrusted X-Forwarded-For address is the key."""
    served = start_signup(rate_limit=2, trusted_proxies=[ip_network("127.0.0.0/8")])
    client = sandbox.create_client(send_webhook=False)

    def signup(n: int, forwarded: str) -> None:
        answer = served.client.get(
            f"{served.base}{SIGNUP_PATH}",
            params={"client": client["id"], "channels": "[]", "n": str(n)},
            headers={"X-Forwarded-For": forwarded},
        )
        assert answer.status_code == 303

    for n in range(6):  # six addresses, two requests each: all within their own limits
        signup(n, f"198.51.100.{n}")
        signup(100 + n, f"10.9.9.9, 198.51.100.{n}, 127.0.0.1")
    for n in range(4):  # one address however the forged left part changes: 2 kept
        signup(200 + n, f"203.0.113.{n}, 192.0.2.1")

    assert len(_stored_requests(served)) == 12 + 2


def test_one_signup_costs_at_most_two_partner_api_calls(
    start_signup: Start, sandbox: SandboxServer, handoff: RecordingHandoff
) -> None:
    """Twenty ids (eighteen real, two forged) are verified with one list call of the client's."""
    served = start_signup()
    mine = sandbox.create_client(send_webhook=False)
    real = [
        sandbox.create_channel(client_id=mine["id"], send_webhook=False)["id"] for _ in range(18)
    ]
    sandbox.reset_request_counts()
    channels = "[" + ",".join([*real, "forged0001", "forged0002"]) + "]"

    answer = served.client.get(
        f"{served.base}{SIGNUP_PATH}", params={"client": mine["id"], "channels": channels}
    )

    assert answer.status_code == 303
    row = _request_row(served)
    assert sorted(call.channel_id for call in handoff.calls) == sorted(real)
    assert "'forged0002' (not a channel of this client)" in (row.error or "")
    assert sandbox.request_counts()["total"] <= 2


def test_signups_beyond_the_api_budget_are_recorded_not_verified(
    start_signup: Start, sandbox: SandboxServer, handoff: RecordingHandoff
) -> None:
    """With a budget of 3 calls a minute, 6 signups cost at most 3 (+ refill); all get a 303."""
    served = start_signup(api_budget=3)
    signups = [sandbox.create_channel(send_webhook=False) for _ in range(6)]
    sandbox.reset_request_counts()
    began = time.monotonic()

    for channel in signups:
        answer = served.client.get(
            f"{served.base}{SIGNUP_PATH}",
            params={"client": channel["client_id"], "channels": f"[{channel['id']}]"},
        )
        assert answer.status_code == 303

    def settled() -> list[InboundEvent] | None:
        rows = _stored_requests(served)
        return rows if len(rows) == 6 and all(r.outcome != "accepted" for r in rows) else None

    rows = wait_until(settled, what="six processed signups")
    refilled = math.ceil((time.monotonic() - began) * 3 / 60)
    assert _channel_lookups(sandbox) <= 3 + refilled
    unverified = [row for row in rows if row.outcome == "ignored"]
    assert len(unverified) >= 3 - refilled
    assert all("ONBOARDING_SIGNUP_API_BUDGET" in (row.error or "") for row in unverified)
    assert len(handoff.calls) == 6 - len(unverified)


def test_the_receiver_never_lets_uvicorn_rewrite_the_client_address() -> None:
    """serve_config turns uvicorn's proxy headers off even when asked for them."""
    from onboarding.receiver import serve_config

    config = serve_config(object(), "127.0.0.1", 1, proxy_headers=True, forwarded_allow_ips="*")
    assert config.proxy_headers is False
