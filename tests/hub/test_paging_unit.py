"""Paging and decoding edge cases the sandbox does not produce, over ``httpx.MockTransport``."""

from __future__ import annotations

import json

import httpx
import pytest

from onboarding.hub import BadResponse, NotFound

from .mock import channel, mock_client, page


def _offset(request: httpx.Request) -> int:
    return int(request.url.params["offset"])


async def test_short_page_mid_list_does_not_stop_paging() -> None:
    """A page shorter than asked for is not the end: paging goes on until offset reaches total."""
    offsets: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        offsets.append(_offset(request))
        pages = {0: ["a", "b"], 2: ["c", "d", "e"]}
        return page([channel(i) for i in pages[_offset(request)]], total=5)

    async with mock_client(handler, page_size=3) as hub:
        ids = [c.id async for c in hub.iter_channels()]
    assert ids == ["a", "b", "c", "d", "e"]
    assert offsets == [0, 2]


async def test_shifting_page_is_deduplicated_by_id() -> None:
    """When the list shifts between pages, an id seen on an earlier page is yielded only once."""

    def handler(request: httpx.Request) -> httpx.Response:
        pages = {0: ["a", "b"], 2: ["b", "c"], 4: ["d"]}
        return page([channel(i) for i in pages[_offset(request)]], total=5)

    async with mock_client(handler, page_size=2) as hub:
        ids = [c.id async for c in hub.iter_channels()]
    assert ids == ["a", "b", "c", "d"]


async def test_empty_page_stops_even_if_total_says_more() -> None:
    """An empty page ends the walk, so a shrinking list cannot make the client loop forever."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(_offset(request))
        items = [channel("a"), channel("b")] if _offset(request) == 0 else []
        return page(items, total=10)

    async with mock_client(handler, page_size=2) as hub:
        ids = [c.id async for c in hub.iter_channels()]
    assert ids == ["a", "b"]
    assert calls == [0, 2]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("[1, 2]", "got a JSON list", id="list"),
        pytest.param('"ready"', "got a JSON str", id="string"),
        pytest.param("null", "got a JSON NoneType", id="null"),
    ],
)
async def test_non_object_json_is_bad_response(body: str, expected: str) -> None:
    """A JSON answer that is not an object raises BadResponse saying what was expected."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    async with mock_client(handler) as hub:
        with pytest.raises(BadResponse, match=expected) as caught:
            await hub.list_channels()
    assert "expected a JSON object" in str(caught.value)
    assert not caught.value.retryable


async def test_wrong_shape_names_the_missing_field() -> None:
    """A JSON object without the list key raises BadResponse naming the field at fault."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"total": 1, "channels": [channel("a")]})

    async with mock_client(handler) as hub:
        with pytest.raises(BadResponse, match="partner_channels"):
            await hub.list_channels()


async def test_channel_without_availability_status_is_kept_as_unknown() -> None:
    """A channel missing availability_status is kept (None, an unknown status); the page parses."""

    def handler(request: httpx.Request) -> httpx.Response:
        return page([{"id": "a"}, channel("b", "ready")], total=2)

    async with mock_client(handler) as hub:
        listed = await hub.list_channels()
    assert [(c.id, c.availability_status) for c in listed.items] == [("a", None), ("b", "ready")]
    assert listed.items[0].is_unknown_status


async def test_paging_without_total_stops_at_the_first_empty_page() -> None:
    """A list answer without total is walked until an empty page; count is never relied on."""
    offsets: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        offsets.append(_offset(request))
        pages = {0: ["a", "b"], 2: ["c"], 3: []}
        items = [channel(i) for i in pages[_offset(request)]]
        # count lies (as one public mock does): the walk must not care.
        return httpx.Response(200, json={"count": 3, "partner_channels": items})

    async with mock_client(handler, page_size=2) as hub:
        ids = [c.id async for c in hub.iter_channels()]
    assert ids == ["a", "b", "c"]
    assert offsets == [0, 2, 3]


async def test_filters_and_sort_are_json_query_parameters() -> None:
    """Filters go out as compact JSON and several sort keys as a JSON list, URL-encoded by httpx."""
    seen: list[httpx.QueryParams] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params)
        return page([], total=0)

    filters = {"setup_info.phone_number": "+49 151&x=1", "client_id": "c1"}
    async with mock_client(handler) as hub:
        await hub.list_channels(filters=filters, sort=["created_at", "-modified_at"], limit=7)
    params = seen[0]
    assert json.loads(params["filters"]) == filters
    assert params["filters"] == json.dumps(filters, separators=(",", ":"))
    assert json.loads(params["sort"]) == ["created_at", "-modified_at"]
    assert (params["limit"], params["offset"]) == ("7", "0")


async def test_get_channel_on_empty_result_is_not_found() -> None:
    """Looking up an id the list call does not return raises NotFound (permanent)."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.url.params["filters"]) == {"id": "nope"}
        return page([], total=0)

    async with mock_client(handler) as hub:
        with pytest.raises(NotFound, match="nope") as caught:
            await hub.get_channel("nope")
    assert not caught.value.retryable


async def test_ids_are_percent_encoded_path_segments() -> None:
    """A channel id containing '/' or '?' stays one path segment instead of changing the route."""
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        return httpx.Response(201, json={"id": "k1", "api_key": "secret-value"})

    async with mock_client(handler) as hub:
        await hub.create_channel_api_key("../x?y")
    assert paths == ["/api/v2/partners/p1/channels/..%2Fx%3Fy/api_keys"]


async def test_bad_api_key_answer_withholds_the_body() -> None:
    """A malformed api_keys answer raises BadResponse without echoing a body that may hold a key."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"id": "k1", "token": "leaky-secret"})

    async with mock_client(handler) as hub:
        with pytest.raises(BadResponse) as caught:
            await hub.create_channel_api_key("ch1")
    assert "leaky-secret" not in str(caught.value)
    assert "withheld" in str(caught.value)
    assert caught.value.__cause__ is None  # pydantic's error would quote the body
