"""The list calls: filters (dotted keys), sort, limit/offset paging, and their errors."""

from __future__ import annotations

import json

import httpx
import pytest

from onboarding.sandbox import OTHER_PARTNER_ID, SANDBOX_PARTNER_ID
from tests.fixtures.sandbox import SandboxServer

CHANNELS = f"/partners/{SANDBOX_PARTNER_ID}/channels"
CLIENTS = f"/partners/{SANDBOX_PARTNER_ID}/clients"


def _list(api: httpx.Client, path: str = CHANNELS, **params: object) -> dict:
    for key in ("filters", "sort"):
        if key in params and not isinstance(params[key], str):
            params[key] = json.dumps(params[key])
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _ids(page: dict, key: str = "partner_channels") -> list[str]:
    return [item["id"] for item in page[key]]


def test_channel_object_has_the_reference_fields(sandbox: SandboxServer, api: httpx.Client) -> None:
    """A listed channel carries every field of the reference, plus extra unmodelled ones."""
    sandbox.create_channel(id="ch-1", phone_number="+4930123")

    channel = _list(api)["partner_channels"][0]

    assert channel["availability_status"] == "setting_up"
    assert channel["status"] == "created"
    assert channel["setup_info"]["phone_number"] == "+4930123"
    assert channel["client"]["id"] == channel["client_id"]
    assert {"waba_account", "account_mode", "created_at", "modified_at", "terminated_at"} <= set(
        channel
    )
    assert channel["created_at"].endswith("Z")
    assert "integration" in channel  # extra field the client must ignore


def test_filter_by_top_level_field(sandbox: SandboxServer, api: httpx.Client) -> None:
    """filters={"availability_status": ...} keeps only matching channels and total counts them."""
    sandbox.create_channel(id="a")
    sandbox.create_channel(id="b", availability_status="ready")
    sandbox.create_channel(id="c", availability_status="ready")

    page = _list(api, filters={"availability_status": "ready"})

    assert sorted(_ids(page)) == ["b", "c"]
    assert page["total"] == 2
    assert page["filters"] == {"availability_status": "ready"}


@pytest.mark.parametrize(
    ("key", "value_of"),
    [
        pytest.param(
            "setup_info.phone_number", lambda ch: ch["setup_info"]["phone_number"], id="phone"
        ),
        pytest.param("client.id", lambda ch: ch["client"]["id"], id="client-id"),
    ],
)
def test_filter_by_dotted_key(sandbox: SandboxServer, api: httpx.Client, key, value_of) -> None:
    """Dotted filter keys reach nested fields."""
    wanted = sandbox.create_channel(phone_number="+4911111")
    sandbox.create_channel(phone_number="+4922222")

    page = _list(api, filters={key: value_of(wanted)})

    assert _ids(page) == [wanted["id"]]


def test_filter_by_id_fetches_one_channel(sandbox: SandboxServer, api: httpx.Client) -> None:
    """filters={"id": ...} is how a single channel is read."""
    sandbox.bulk_channels(5)
    wanted = sandbox.create_channel()

    assert _ids(_list(api, filters={"id": wanted["id"]})) == [wanted["id"]]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        pytest.param("id", ["a", "b", "c"], id="asc"),
        pytest.param("-id", ["c", "b", "a"], id="desc"),
        pytest.param(["-status", "id"], ["c", "a", "b"], id="json-list"),
    ],
)
def test_sort(sandbox: SandboxServer, api: httpx.Client, sort, expected) -> None:
    """sort orders by a field, '-' descending, and a JSON list sorts by several fields."""
    sandbox.create_channel(id="b", status="created")
    sandbox.create_channel(id="c", status="verified")
    sandbox.create_channel(id="a", status="created")

    assert _ids(_list(api, sort=sort)) == expected


def test_paging_walks_every_item_once(sandbox: SandboxServer, api: httpx.Client) -> None:
    """limit/offset pages cover the list exactly once and total is the full count."""
    created = sandbox.bulk_channels(25)
    seen: list[str] = []

    for offset in range(0, 25, 10):
        page = _list(api, limit=10, offset=offset, sort="id")
        assert page["total"] == 25
        assert page["count"] == len(page["partner_channels"])
        seen += _ids(page)

    assert seen == sorted(created)


def test_limit_defaults_to_100_and_is_capped(sandbox: SandboxServer, api: httpx.Client) -> None:
    """Without limit a page holds 100; a limit above the server maximum is silently capped."""
    sandbox.bulk_channels(150)
    sandbox.configure(max_limit=40)

    capped = _list(api, limit=1000)
    sandbox.configure(max_limit=1000)
    default = _list(api)

    assert (capped["limit"], capped["count"], capped["total"]) == (40, 40, 150)
    assert (default["limit"], default["count"]) == (100, 100)


def test_clients_list_has_the_same_shape(sandbox: SandboxServer, api: httpx.Client) -> None:
    """The clients list pages and filters like the channels list, under the key 'clients'."""
    sandbox.create_client(id="cl-1", name="Acme", email="a@example.com")
    sandbox.create_client(id="cl-2", name="Beta")
    sandbox.create_client(partner_id=OTHER_PARTNER_ID, name="Not ours")

    page = _list(api, CLIENTS, filters={"contact_info.email": "a@example.com"})
    everything = _list(api, CLIENTS)

    assert _ids(page, "clients") == ["cl-1"]
    assert page["clients"][0]["partner_id"] == SANDBOX_PARTNER_ID
    assert everything["total"] == 2
    assert {"count", "total", "limit", "offset", "filters", "sort"} <= set(everything)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"filters": "{not json"}, id="bad-filters-json"),
        pytest.param({"filters": "[1, 2]"}, id="filters-not-object"),
        pytest.param({"limit": "ten"}, id="bad-limit"),
        pytest.param({"offset": "-1"}, id="negative-offset"),
    ],
)
def test_bad_list_parameters_get_400(api: httpx.Client, params: dict[str, str]) -> None:
    """Unparseable list parameters are a 400 with the error envelope."""
    response = api.get(CHANNELS, params=params)

    assert response.status_code == 400
    meta = response.json()["meta"]
    assert meta["success"] is False
    assert meta["http_code"] == 400
    assert meta["developer_message"]
    assert meta["details"] == []


def test_unknown_route_gets_error_envelope(api: httpx.Client) -> None:
    """Even a 404 for an unknown path carries the error envelope."""
    response = api.get("/no/such/path")

    assert response.status_code == 404
    assert response.json()["meta"]["http_code"] == 404
