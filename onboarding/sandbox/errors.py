"""Every sandbox error leaves in the Partner API's envelope: ``{"meta": {..., "http_code"}}``."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from onboarding.sandbox.models import error_body

__all__ = ["EXCEPTION_HANDLERS", "ApiError", "error_response", "json_body"]


class ApiError(Exception):
    """Raised by a handler to answer ``http_code`` with ``message``."""

    def __init__(self, http_code: int, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.http_code = http_code
        self.message = message
        self.details = details or []


def error_response(
    http_code: int,
    message: str,
    details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON response carrying the error envelope."""
    return JSONResponse(error_body(http_code, message, details), http_code, headers=headers)


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or :class:`ApiError` 400."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.http_code, exc.message, exc.details)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


EXCEPTION_HANDLERS = {ApiError: _api_error, HTTPException: _http_exception}
