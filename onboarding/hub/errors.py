"""What can go wrong when talking to the Partner API, classified by what a retry can achieve.

::

    HubError             base: .retryable, .request ("GET https://host/path"), .status_code
    ├── AuthError        401/403: bad credentials, or no permission (.forbidden)   permanent
    ├── NotFound         404                                                       permanent
    ├── RateLimited      429 beyond the client's own waits (.retry_after)          transient
    ├── HubUnavailable   5xx, timeouts, refused connections, network errors        transient
    ├── BadResponse      non-JSON body, or a JSON shape we cannot use              permanent
    └── HubRequestError  any other 4xx                                             permanent
        └── PermissionPending  403/400 on creating ONE channel's key: the client   permanent
                               has not granted permission yet (.channel_id)        (for now)

Every error carries the server's ``developer_message`` (``None`` when the body has none).
:class:`PermissionPending` is deliberately *not* an :class:`AuthError`: the partner's credentials
work, one client has not allowed key creation yet, so no partner-wide credential alert is due.

Lower-level ``httpx`` errors are mapped with ``raise ... from exc``. Messages name the request
(method and URL without query string) and the server's ``developer_message`` when the body has
the Partner API error shape; they never contain credentials or request headers.
"""

from __future__ import annotations

from typing import Any

import httpx

BODY_EXCERPT = 200


class HubError(Exception):
    """Base of every Partner API failure; ``retryable`` says whether trying again can help."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        request: str | None = None,
        status_code: int | None = None,
        developer_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.request = request
        self.status_code = status_code
        self.developer_message = developer_message


class AuthError(HubError):
    """401 (credentials wrong or missing) or 403 (``forbidden``: valid but not allowed)."""

    def __init__(self, message: str, *, forbidden: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.forbidden = forbidden


class NotFound(HubError):
    """The resource does not exist (404, or an empty result for a lookup by id)."""


class RateLimited(HubError):
    """The API kept answering 429; ``retry_after`` is its last advice in seconds, if any."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class HubUnavailable(HubError):
    """The API could not answer: 5xx, a timeout, or a network error."""

    retryable = True


class BadResponse(HubError):
    """The API answered, but not with the JSON shape we expected."""


class HubRequestError(HubError):
    """Any other 4xx: the request itself is wrong, so repeating it will not help."""


class PermissionPending(HubRequestError):
    """Creating ``channel_id``'s API key was refused (403 or 400) while the credentials work.

    For clients who pay 360dialog directly, the partner may create a key only after the client
    grants permission (360dialog then sends ``channel_permission_granted``). Repeating the call
    at once will not help; repeating it after the grant will.
    """

    def __init__(self, message: str, *, channel_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.channel_id = channel_id

    @classmethod
    def from_error(cls, error: HubError, channel_id: str) -> PermissionPending:
        """The refusal ``error`` of ``channel_id``'s key creation, reclassified."""
        return cls(
            f"{error} (channel {channel_id}: waiting for the client's permission?)",
            channel_id=channel_id,
            request=error.request,
            status_code=error.status_code,
            developer_message=error.developer_message,
        )


def is_retryable(exc: BaseException) -> bool:
    """True when repeating the failed call may succeed (for task retry conditions)."""
    if isinstance(exc, HubError):
        return exc.retryable
    return isinstance(exc, httpx.TransportError)


def describe_request(request: httpx.Request) -> str:
    """``METHOD scheme://host[:port]/path``: no query string, no user info, no headers."""
    url = request.url
    port = f":{url.port}" if url.port else ""
    return f"{request.method} {url.scheme}://{url.host}{port}{url.path}"


def excerpt(text: str, limit: int = BODY_EXCERPT) -> str:
    """``text`` cut to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def _developer_message(response: httpx.Response) -> str | None:
    """The ``meta.developer_message`` of a Partner API error body, if there is one."""
    try:
        meta = response.json().get("meta")
    except (ValueError, AttributeError):
        return None
    message = meta.get("developer_message") if isinstance(meta, dict) else None
    return excerpt(str(message)) if message else None


def error_for_response(response: httpx.Response) -> HubError:
    """The exception for a non-success ``response`` (the caller raises it)."""
    status = response.status_code
    where = describe_request(response.request)
    detail = _developer_message(response)
    message = f"{status} {response.reason_phrase} from {where}" + (f": {detail}" if detail else "")
    kwargs: dict[str, Any] = {
        "request": where,
        "status_code": status,
        "developer_message": detail,
    }
    if status in (401, 403):
        return AuthError(message, forbidden=status == 403, **kwargs)
    if status == 404:
        return NotFound(message, **kwargs)
    if status == 429:
        return RateLimited(message, retry_after=parse_retry_after(response), **kwargs)
    if status >= 500:
        return HubUnavailable(message, **kwargs)
    return HubRequestError(message, **kwargs)


def error_for_transport(exc: httpx.TransportError, request: httpx.Request) -> HubUnavailable:
    """A timeout, refused connection or protocol error, as :class:`HubUnavailable`."""
    where = describe_request(request)
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return HubUnavailable(f"{where} {kind}: {detail}", request=where)


def parse_retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds when it is a number; ``None`` when absent or a date."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
