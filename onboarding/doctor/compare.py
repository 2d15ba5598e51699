"""Compare one raw channel page from the Partner API with our wire models.

Only names and counts leave this module: which fields we expect but did not get, which extra
fields came, which ``availability_status`` values we have never seen (they are status words, not
personal data; anything that does not look like one is shown as ``<unreadable>``), and the page
size the server actually honoured.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from onboarding.hub.models import AvailabilityStatus, Channel, ChannelPage

__all__ = ["PageComparison", "compare_page", "expected_names"]

_STATUS_WORD = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,39}$")


def expected_names(model: type[BaseModel]) -> set[str]:
    """The JSON names a wire model reads (aliases where set)."""
    return {field.alias or name for name, field in model.model_fields.items()}


class PageComparison(BaseModel):
    """How a real channel page differs from what :class:`Channel`/:class:`ChannelPage` expect."""

    items: int = 0
    page_fields_missing: list[str] = Field(default_factory=list)
    page_fields_extra: list[str] = Field(default_factory=list)
    channel_fields_missing: dict[str, int] = Field(default_factory=dict)
    channel_fields_extra: dict[str, int] = Field(default_factory=dict)
    unknown_availability_status: dict[str, int] = Field(default_factory=dict)
    requested_limit: int
    returned_limit: int | None = None
    total: int | None = None
    page_size_honoured: bool | None = None

    @property
    def differs(self) -> bool:
        """True when something came back that our models do not expect."""
        return bool(
            self.page_fields_missing
            or self.channel_fields_missing
            or self.unknown_availability_status
            or self.page_size_honoured is False
        )

    def lines(self) -> list[str]:
        """The differences as short lines for a person (names and counts only)."""
        out = [f"page: {self.items} channel(s), total {self.total}"]
        if self.page_fields_missing:
            out.append("page fields missing: " + ", ".join(self.page_fields_missing))
        if self.page_fields_extra:
            out.append("page fields we do not model: " + ", ".join(self.page_fields_extra))
        if self.channel_fields_missing:
            out.append("channel fields missing: " + _counts(self.channel_fields_missing))
        if self.channel_fields_extra:
            out.append("channel fields we do not model: " + _counts(self.channel_fields_extra))
        if self.unknown_availability_status:
            out.append("unknown availability_status: " + _counts(self.unknown_availability_status))
        if self.page_size_honoured is False:
            out.append(
                f"page size: asked for {self.requested_limit}, server answered limit "
                f"{self.returned_limit} with {self.items} item(s)"
            )
        return out


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{name} ({count})" for name, count in sorted(counter.items()))


def _status_word(value: Any) -> str:
    text = str(value)
    return text if _STATUS_WORD.match(text) else "<unreadable>"


def _page_size_honoured(raw: dict[str, Any], requested: int, items: int) -> bool | None:
    returned = raw.get("limit")
    total = raw.get("total")
    if isinstance(returned, int) and returned != requested:
        return False
    if isinstance(total, int):
        return items == min(requested, total)
    return None


def compare_page(raw: Any, *, requested_limit: int) -> PageComparison:
    """Compare a decoded channel-list answer (any JSON) with our models."""
    result = PageComparison(requested_limit=requested_limit)
    if not isinstance(raw, dict):
        result.page_fields_missing = sorted(expected_names(ChannelPage))
        return result
    page_expected = expected_names(ChannelPage)
    result.page_fields_missing = sorted(page_expected - set(raw))
    result.page_fields_extra = sorted(set(raw) - page_expected)
    items = raw.get("partner_channels")
    channels = [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
    result.items = len(channels)
    result.returned_limit = raw.get("limit") if isinstance(raw.get("limit"), int) else None
    result.total = raw.get("total") if isinstance(raw.get("total"), int) else None
    expected = expected_names(Channel)
    missing: Counter[str] = Counter()
    extra: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    known = set(AvailabilityStatus.__members__.values())
    for item in channels:
        missing.update(expected - set(item))
        extra.update(name for name in set(item) - expected if isinstance(name, str))
        status = item.get("availability_status")
        if status is not None and status not in known:
            unknown[_status_word(status)] += 1
    result.channel_fields_missing = dict(missing)
    result.channel_fields_extra = dict(extra)
    result.unknown_availability_status = dict(unknown)
    result.page_size_honoured = _page_size_honoured(raw, requested_limit, result.items)
    return result
