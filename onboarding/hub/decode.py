"""From HTTP answers to values: query parameters out, JSON objects and validated models in.

Anything that is not the JSON shape we expect becomes :class:`BadResponse`, saying what was
expected and showing the body cut to ~200 characters (or withholding it when it may hold a secret).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from onboarding.hub.errors import BadResponse, describe_request, excerpt

__all__ = ["decode_object", "list_params", "validate"]

M = TypeVar("M", bound=BaseModel)


def list_params(
    filters: Mapping[str, Any] | None, sort: str | Sequence[str] | None, limit: int, offset: int
) -> dict[str, Any]:
    """Query parameters of a list call; httpx URL-encodes them."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if filters:
        params["filters"] = json.dumps(dict(filters), separators=(",", ":"))
    if isinstance(sort, str):
        params["sort"] = sort
    elif sort:
        params["sort"] = json.dumps(list(sort), separators=(",", ":"))
    return params


def decode_object(response: httpx.Response, *, sensitive: bool) -> dict[str, Any]:
    """The body as a JSON object, or :class:`BadResponse`."""
    try:
        data = response.json()
    except ValueError as exc:
        raise _bad_response(response, "expected a JSON object, got non-JSON", sensitive) from exc
    if not isinstance(data, dict):
        got = type(data).__name__
        raise _bad_response(response, f"expected a JSON object, got a JSON {got}", sensitive)
    return data


def _problems(exc: ValidationError) -> str:
    """A validation error as ``expected ...`` naming the first few fields at fault."""
    fields = [
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:3]
    ]
    return f"expected {exc.title} ({'; '.join(fields)})"


def _bad_response(response: httpx.Response, expected: str, sensitive: bool) -> BadResponse:
    """A :class:`BadResponse` saying what was expected and showing the body, cut short."""
    where = describe_request(response.request)
    body = "(body withheld: it may hold a secret)" if sensitive else repr(excerpt(response.text))
    return BadResponse(
        f"{response.status_code} from {where}: {expected}; body: {body}",
        request=where,
        status_code=response.status_code,
    )


def validate(
    model: type[M], data: dict[str, Any], response: httpx.Response, *, sensitive: bool
) -> M:
    """``data`` as ``model``, or :class:`BadResponse` naming the fields at fault."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = _bad_response(response, _problems(exc), sensitive)
        if sensitive:  # pydantic's own message quotes the input, which may hold a secret
            raise error from None
        raise error from exc
