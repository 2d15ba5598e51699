"""Contract tests: the client against the sandbox over real sockets, happy paths."""

from __future__ import annotations

import httpx
import pytest

from onboarding.hub import BearerAuth, HubClient, NotFound, PermissionPending
from tests.fixtures.sandbox import SandboxServer

from .conftest import HubFactory, channel_listings


def _logins_and_listings(sent: list[httpx.Request]) -> tuple[int, int]:
    """How many times this test's clients asked for a token, and for a channel page (the
    session sandbox also hears other processes)."""
    logins = sum(1 for r in sent if r.method == "POST" and r.url.path.endswith("/token"))
    return logins, channel_listings(sent)


async def test_api_key_lists_channels_and_keeps_extra_fields(
    hub: HubClient, sandbox: SandboxServer
) -> None:
    """With X-API-Key the client lists the partner's channels, unmodelled fields kept."""
    made = sandbox.create_channel(phone_number="+491511234567", send_webhook=False)
    page = await hub.list_channels()
    assert page.total == 1
    (channel,) = page.items
    assert channel.id == made["id"]
    assert channel.client_id == made["client_id"]
    assert channel.phone_number == "+491511234567"
    assert channel.client_name == made["client"]["name"]
    assert channel.model_extra is not None
    assert channel.model_extra["current_limit"] == "TIER_250"


async def test_bearer_token_is_fetched_once_and_reused(
    make_hub: HubFactory, sandbox: SandboxServer, sent: list[httpx.Request]
) -> None:
    """Bearer auth logs in once at POST /token and reuses the token for later calls."""
    hub = make_hub(auth=BearerAuth(sandbox.username, sandbox.password))
    for _ in range(3):
        await hub.list_channels()
    assert _logins_and_listings(sent) == (1, 3)


async def test_bearer_relogs_once_when_the_server_drops_the_token(
    make_hub: HubFactory, sandbox: SandboxServer, sent: list[httpx.Request]
) -> None:
    """When the sandbox no longer accepts the token, the client logs in again once and succeeds."""
    hub = make_hub(auth=BearerAuth(sandbox.username, sandbox.password))
    await hub.list_channels()
    sandbox.state.tokens.clear()  # the server forgets every token (expiry or revocation)
    await hub.list_channels()
    assert _logins_and_listings(sent) == (2, 3)


async def test_bearer_refreshes_short_lived_tokens_before_expiry(
    make_hub: HubFactory, sandbox: SandboxServer, sent: list[httpx.Request]
) -> None:
    """A token whose lifetime is almost over is renewed before use, so no request meets a 401."""
    sandbox.configure(token_expires_in=100)
    now = [0.0]
    auth = BearerAuth(sandbox.username, sandbox.password, clock=lambda: now[0])
    hub = make_hub(auth=auth)
    await hub.list_channels()
    now[0] += 95  # past lifetime minus the 10 s margin
    await hub.list_channels()
    assert _logins_and_listings(sent) == (2, 2)


async def test_paging_walks_every_page_once(
    make_hub: HubFactory, sandbox: SandboxServer, sent: list[httpx.Request]
) -> None:
    """With a small page size, iter_channels reads all pages and yields every channel once."""
    ids = sandbox.bulk_channels(23)
    hub = make_hub(page_size=7)
    seen = [channel.id async for channel in hub.iter_channels(sort="id")]
    assert seen == sorted(ids)
    assert channel_listings(sent) == 4


async def test_paging_survives_a_server_that_caps_the_limit(
    make_hub: HubFactory, sandbox: SandboxServer, sent: list[httpx.Request]
) -> None:
    """When the server returns fewer items than asked, paging continues instead of stopping."""
    ids = sandbox.bulk_channels(12)
    sandbox.configure(max_limit=5)
    hub = make_hub(page_size=100)
    seen = [channel.id async for channel in hub.iter_channels()]
    assert sorted(seen) == sorted(ids)
    assert channel_listings(sent) == 3


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("availability_status", id="availability"),
        pytest.param("client_id", id="client"),
        pytest.param("setup_info.phone_number", id="dotted"),
    ],
)
async def test_filters_select_matching_channels(
    hub: HubClient, sandbox: SandboxServer, key: str
) -> None:
    """Filters, including dotted keys for nested fields, return exactly the matching channel."""
    target = sandbox.create_channel(
        phone_number="+49 151 000&x=1", availability_status="ready", send_webhook=False
    )
    sandbox.bulk_channels(3)
    value = {
        "availability_status": "ready",
        "client_id": target["client_id"],
        "setup_info.phone_number": "+49 151 000&x=1",
    }[key]
    found = [c.id async for c in hub.iter_channels(filters={key: value})]
    assert found == [target["id"]]


@pytest.mark.parametrize(
    ("sort", "descending"),
    [pytest.param("id", False, id="asc"), pytest.param("-id", True, id="desc")],
)
async def test_sort_orders_the_list(
    hub: HubClient, sandbox: SandboxServer, sort: str, descending: bool
) -> None:
    """sort=id lists ascending and sort=-id descending."""
    ids = sandbox.bulk_channels(5)
    page = await hub.list_channels(sort=sort)
    assert [c.id for c in page.items] == sorted(ids, reverse=descending)


async def test_unknown_availability_status_is_kept_and_flagged(
    hub: HubClient, sandbox: SandboxServer
) -> None:
    """A channel in an undocumented availability_status parses, keeps the value and is flagged."""
    made = sandbox.create_channel(availability_status="migrating", send_webhook=False)
    channel = await hub.get_channel(made["id"])
    assert channel.availability_status == "migrating"
    assert channel.is_unknown_status


async def test_get_channel_unknown_id_is_not_found(hub: HubClient, sandbox: SandboxServer) -> None:
    """Looking up an id the partner does not have raises NotFound."""
    sandbox.bulk_channels(2)
    with pytest.raises(NotFound):
        await hub.get_channel("no-such-channel")


async def test_iter_clients_lists_the_partners_clients(
    hub: HubClient, sandbox: SandboxServer
) -> None:
    """iter_clients returns every client the partner has."""
    made = [sandbox.create_client(name=f"Client {i}")["id"] for i in range(3)]
    found = [client.id async for client in hub.iter_clients()]
    assert sorted(found) == sorted(made)


async def test_create_channel_api_key_returns_a_secret(
    hub: HubClient, sandbox: SandboxServer
) -> None:
    """Creating a Messaging API key returns it as a SecretStr and the sandbox records one key."""
    made = sandbox.create_channel(availability_status="ready", send_webhook=False)
    key = await hub.create_channel_api_key(made["id"])
    assert key.api_key.get_secret_value()
    assert key.api_key.get_secret_value() not in repr(key)
    assert sandbox.api_key_count(made["id"]) == 1


async def test_webhook_url_round_trip(hub: HubClient, sandbox: SandboxServer) -> None:
    """set_webhook_url stores the URL that get_webhook_url and get_partner then report."""
    assert await hub.get_webhook_url() is None
    await hub.set_webhook_url("https://partner.example/hooks/abc")
    assert await hub.get_webhook_url() == "https://partner.example/hooks/abc"
    partner = await hub.get_partner()
    assert partner["id"] == sandbox.partner_id
    assert partner["webhook_url"] == "https://partner.example/hooks/abc"


@pytest.mark.parametrize("shape", ["flat", "wrapped", "key"])
async def test_every_key_shape_of_the_sandbox_yields_a_key(
    hub: HubClient, sandbox: SandboxServer, shape: str
) -> None:
    """Whatever shape the sandbox answers key creation in, the client returns the active key."""
    sandbox.configure(key_shape=shape)
    made = sandbox.create_channel(availability_status="ready", send_webhook=False)

    key = await hub.create_channel_api_key(made["id"])

    assert key.api_key.get_secret_value()
    assert key.id == sandbox.active_api_key_id(made["id"])


async def test_key_creation_waiting_for_permission_is_permission_pending(
    hub: HubClient, sandbox: SandboxServer
) -> None:
    """A client that has not granted permission gives PermissionPending, then a key once granted."""
    made = sandbox.create_channel(
        availability_status="ready", needs_permission=True, send_webhook=False
    )

    with pytest.raises(PermissionPending) as caught:
        await hub.create_channel_api_key(made["id"])
    assert caught.value.channel_id == made["id"]
    assert "permission" in (caught.value.developer_message or "")

    sandbox.control.post(f"/channels/{made['id']}/permission").raise_for_status()
    assert (await hub.create_channel_api_key(made["id"])).api_key.get_secret_value()


async def test_a_page_with_a_channel_lacking_availability_status_is_read_whole(
    hub: HubClient, sandbox: SandboxServer
) -> None:
    """A channel without availability_status is listed with None beside the others, not dropped."""
    bare = sandbox.create_channel(availability_status=None, send_webhook=False)
    other = sandbox.create_channel(send_webhook=False)

    found = {channel.id: channel async for channel in hub.iter_channels()}

    assert set(found) == {bare["id"], other["id"]}
    assert found[bare["id"]].availability_status is None
    assert found[bare["id"]].is_unknown_status


async def test_lowercase_bearer_token_without_expiry_authenticates(
    make_hub: HubFactory, sandbox: SandboxServer
) -> None:
    """A token answer with `token_type: bearer` and no expires_in still logs the client in."""
    sandbox.configure(token_type="bearer", send_expires_in=False)
    hub = make_hub(auth=BearerAuth(sandbox.username, sandbox.password))

    assert (await hub.list_channels()).items == []
