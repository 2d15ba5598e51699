"""Comparing a raw channel page with our models: names and counts, never values."""

from __future__ import annotations

from typing import Any

from onboarding.doctor import compare_page
from onboarding.doctor.compare import expected_names
from onboarding.hub.models import Channel

FULL = {name: None for name in expected_names(Channel)}


def _channel(**fields: Any) -> dict[str, Any]:
    return {**FULL, "id": "c1", "availability_status": "ready", **fields}


def _page(items: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    page = {"total": len(items), "count": len(items), "limit": 5, "offset": 0}
    return {**page, "partner_channels": items, **fields}


def test_a_page_like_our_models_does_not_differ() -> None:
    """A page with every expected field and known statuses reports no difference."""
    comparison = compare_page(_page([_channel()]), requested_limit=5)
    assert not comparison.differs
    assert comparison.page_size_honoured is True


def test_missing_extra_fields_and_unknown_statuses_are_counted() -> None:
    """Missing fields, extra fields and unseen statuses come back as names with counts."""
    one = _channel(availability_status="paused", phone_secret="+4915112345678")
    two = _channel(availability_status="paused")
    del two["waba_account"]
    comparison = compare_page(_page([one, two], cursor="abc"), requested_limit=5)
    assert comparison.differs
    assert comparison.channel_fields_missing == {"waba_account": 1}
    assert comparison.channel_fields_extra == {"phone_secret": 1}
    assert comparison.unknown_availability_status == {"paused": 2}
    assert comparison.page_fields_extra == ["cursor"]
    assert "+4915112345678" not in " ".join(comparison.lines())


def test_a_status_that_is_not_a_word_is_not_echoed() -> None:
    """An availability_status that looks like data (spaces, digits first) is shown as unreadable."""
    comparison = compare_page(
        _page([_channel(availability_status="Jane Doe +49 151")]), requested_limit=5
    )
    assert comparison.unknown_availability_status == {"<unreadable>": 1}


def test_a_capped_page_size_is_reported() -> None:
    """A server that answers limit 2 to a request for 5 did not honour the page size."""
    items = [_channel(id=f"c{n}") for n in range(2)]
    comparison = compare_page({**_page(items), "total": 10, "limit": 2}, requested_limit=5)
    assert comparison.page_size_honoured is False
    assert any("asked for 5" in line for line in comparison.lines())


def test_not_an_object_misses_every_page_field() -> None:
    """A JSON list instead of a page misses every page field."""
    comparison = compare_page([1, 2], requested_limit=5)
    assert "partner_channels" in comparison.page_fields_missing
    assert comparison.differs
