"""The list calls' query language: ``filters`` (JSON, dotted keys), ``sort``, paging."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ListQuery", "QueryError", "parse_query", "run_query"]

_MISSING = object()


class QueryError(ValueError):
    """A query parameter cannot be understood (the API answers 400)."""


@dataclass(frozen=True)
class ListQuery:
    """A parsed list request."""

    filters: dict[str, Any]
    sort: list[str]
    limit: int
    offset: int
    raw_sort: str | None


def _lookup(obj: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``a.b.c`` inside nested dicts, or ``_MISSING``."""
    value: Any = obj
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _parse_filters(raw: str | None) -> dict[str, Any]:
    if raw is None or raw.strip() == "":
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise QueryError(f"filters is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(parsed, dict):
        raise QueryError("filters must be a JSON object")
    return parsed


def _parse_sort(raw: str | None) -> list[str]:
    if raw is None or raw.strip() == "":
        return []
    text = raw.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise QueryError(f"sort is not valid JSON: {exc.msg}") from None
        if not all(isinstance(item, str) and item.strip("-") for item in parsed):
            raise QueryError("sort must be a field name or a JSON list of field names")
        return parsed
    return [part.strip() for part in text.split(",") if part.strip()]


def _parse_int(raw: str | None, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise QueryError(f"{name} must not be negative")
    return value


def parse_query(
    params: Mapping[str, str], *, max_limit: int, default_limit: int = 100
) -> ListQuery:
    """Parse the list parameters; a ``limit`` above ``max_limit`` is silently capped."""
    limit = _parse_int(params.get("limit"), "limit", default_limit)
    return ListQuery(
        filters=_parse_filters(params.get("filters")),
        sort=_parse_sort(params.get("sort")),
        limit=min(limit, max_limit),
        offset=_parse_int(params.get("offset"), "offset", 0),
        raw_sort=params.get("sort"),
    )


def _sort_key(field: str) -> Any:
    def key(obj: Mapping[str, Any]) -> tuple[int, str, Any]:
        value = _lookup(obj, field)
        if value is _MISSING or value is None:
            return (1, "", "")
        # Group by type so mixed values never compare str with int.
        return (0, type(value).__name__, value)

    return key


def run_query(items: Iterable[Mapping[str, Any]], query: ListQuery) -> tuple[int, list[Any]]:
    """Filter, sort and page ``items``; returns ``(total matching, page)``."""
    conditions = list(query.filters.items())
    matched = [
        obj
        for obj in items
        if all(
            (value := _lookup(obj, key)) == expected or (value is _MISSING and expected is None)
            for key, expected in conditions
        )
    ]
    # Stable sorts applied last key first give a multi-key sort with mixed directions.
    for field in reversed(query.sort):
        descending = field.startswith("-")
        matched.sort(key=_sort_key(field.lstrip("-+")), reverse=descending)
    return len(matched), matched[query.offset : query.offset + query.limit]
