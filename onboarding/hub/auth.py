"""How the client proves who it is: an API key header, or a bearer token from ``POST /token``.

Both strategies answer :meth:`headers` (what to send with the next request) and
:meth:`invalidate` (the server said 401 to those headers). Only :class:`BearerAuth` can do
something about a 401: it drops the token, and the client logs in again once and retries once.
Neither a key nor a token ever appears in a ``repr``, a log line or an exception.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from pydantic import SecretStr

from onboarding.hub.errors import (
    BadResponse,
    describe_request,
    error_for_response,
    error_for_transport,
)

__all__ = ["ApiKeyAuth", "BearerAuth", "HubAuth"]

log = logging.getLogger("onboarding.hub")

DEFAULT_TOKEN_LIFETIME = 86_400.0  # renew after 24 h when the answer has no expires_in


def _secret(value: SecretStr | str) -> SecretStr:
    """Wrap a plain string so it cannot leak through a repr."""
    return value if isinstance(value, SecretStr) else SecretStr(value)


class ApiKeyAuth:
    """Send the partner API key as ``X-API-Key`` (the recommended method)."""

    refreshable = False

    def __init__(self, key: SecretStr | str) -> None:
        self._key = _secret(key)

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        """The header that authenticates a request."""
        return {"X-API-Key": self._key.get_secret_value()}

    def invalidate(self, stale: Mapping[str, str]) -> None:
        """Nothing to refresh: a rejected key stays rejected."""

    def __repr__(self) -> str:
        return "ApiKeyAuth(key=**********)"


class BearerAuth:
    """Log in with username/password at ``POST {base}/token`` and send ``Authorization: Bearer``.

    The token is cached and renewed ``refresh_margin`` seconds (at most 10% of its lifetime)
    before it expires; concurrent callers share one login.
    """

    refreshable = True

    def __init__(
        self,
        username: str,
        password: SecretStr | str,
        *,
        token_path: str = "/token",  # noqa: S107 - a URL path, not a password
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._username = username
        self._password = _secret(password)
        self._token_path = token_path
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._token: SecretStr | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        """``Authorization: Bearer <token>``, logging in first if the token is missing or old."""
        token = await self._valid_token(http)
        return {"Authorization": f"Bearer {token.get_secret_value()}"}

    def invalidate(self, stale: Mapping[str, str]) -> None:
        """Forget the token that earned a 401, unless another caller already replaced it."""
        if self._token is not None and stale.get("Authorization") == (
            f"Bearer {self._token.get_secret_value()}"
        ):
            self._token = None

    async def _valid_token(self, http: httpx.AsyncClient) -> SecretStr:
        """The cached token while it is fresh, else a new one (one login at a time)."""
        async with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._token, lifetime = await self._login(http)
                margin = min(self._refresh_margin, 0.1 * lifetime)
                self._refresh_at = self._clock() + lifetime - margin
            return self._token

    async def _login(self, http: httpx.AsyncClient) -> tuple[SecretStr, float]:
        """``POST /token``; returns the token and its lifetime in seconds."""
        body = {"username": self._username, "password": self._password.get_secret_value()}
        request = http.build_request("POST", self._token_path, json=body)
        log.debug("%s %s", request.method, request.url.path)
        try:
            response = await http.send(request)
        except httpx.TransportError as exc:
            raise error_for_transport(exc, request) from exc
        if not response.is_success:
            raise error_for_response(response)
        return _parse_token(response)

    def __repr__(self) -> str:
        return "BearerAuth(username=***, password=**********)"


def _parse_token(response: httpx.Response) -> tuple[SecretStr, float]:
    """``access_token`` and its lifetime from a token answer (the body is never shown).

    ``token_type`` may come in any case (``Bearer``, ``bearer``) or not at all; another type is
    refused. Without a usable ``expires_in`` the token is renewed after 24 hours.
    """
    where = describe_request(response.request)
    try:
        data: Any = response.json()
    except ValueError:
        data = None
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise BadResponse(
            f"{where}: expected a JSON object with a string 'access_token' "
            "(body withheld: it may hold a secret)",
            request=where,
            status_code=response.status_code,
        )
    token_type = data.get("token_type")
    if token_type is not None and str(token_type).strip().lower() != "bearer":
        shown = str(token_type)[:20] if str(token_type).isalnum() else "<unreadable>"
        raise BadResponse(
            f"{where}: expected token_type 'bearer' (any case), got {shown!r}",
            request=where,
            status_code=response.status_code,
        )
    lifetime = data.get("expires_in")
    valid = isinstance(lifetime, int | float) and not isinstance(lifetime, bool) and lifetime > 0
    return SecretStr(token), float(lifetime) if valid else DEFAULT_TOKEN_LIFETIME


HubAuth = ApiKeyAuth | BearerAuth
