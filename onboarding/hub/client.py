"""``HubClient``: the Partner API calls onboarding needs, over an ``httpx.AsyncClient`` it is given.

One call peels its concerns in layers, outermost first::

    _fetch     decode JSON -> validate the shape (BadResponse)
    _send      auth headers; on 401 with a bearer token, log in again once and retry once;
               any non-success status -> the mapped HubError
    _paced     concurrency cap (semaphore); on 429 wait Retry-After (capped) or back off
    _send_one  one HTTP request; transport errors -> HubUnavailable

Lists are paged by ``offset`` advanced by the items actually received, until ``offset >= total``
(when the answer has a ``total``) or an empty page; ``count`` is never read. Items are
de-duplicated by ``id`` because lists shift while we page.

Creating a channel's API key maps a 403 or 400 answer to :class:`PermissionPending` (the client
has not granted permission yet); a 401 stays :class:`AuthError` (the partner's credentials).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from onboarding.hub.auth import ApiKeyAuth, BearerAuth
from onboarding.hub.decode import decode_object, list_params, validate
from onboarding.hub.errors import (
    AuthError,
    HubRequestError,
    NotFound,
    PermissionPending,
    error_for_response,
    error_for_transport,
    parse_retry_after,
)
from onboarding.hub.models import Channel, ChannelApiKey, ChannelPage, Client, ClientPage
from onboarding.settings import HubSettings
from onboarding.tls import tls_context

__all__ = ["HubClient"]

log = logging.getLogger("onboarding.hub")

M = TypeVar("M", bound=BaseModel)
Page = ChannelPage | ClientPage
PageFetcher = Callable[..., Awaitable[Page]]


class HubClient:
    """Async client of the 360dialog Partner API for one partner."""

    backoff_base = 0.5  # seconds before the first 429 retry when the server gives no Retry-After

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        partner_id: str,
        auth: ApiKeyAuth | BearerAuth,
        page_size: int = 100,
        max_concurrency: int = 8,
        max_rate_limit_waits: int = 3,
        max_retry_after: float = 60.0,
    ) -> None:
        self._http = http
        self._owns_http = False
        self._partner_id = partner_id
        self._partner_path = f"/partners/{_segment(partner_id)}"
        self._auth = auth
        self._page_size = page_size
        self._slots = asyncio.Semaphore(max_concurrency)
        self._max_waits = max_rate_limit_waits
        self._max_retry_after = max_retry_after

    @classmethod
    def from_settings(
        cls,
        settings: HubSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_rate_limit_waits: int = 3,
    ) -> HubClient:
        """A client (owning its own ``httpx.AsyncClient``) configured from ``settings``.

        ``max_rate_limit_waits`` is how many 429 answers a call waits out (each a new request).
        """
        settings.require_credentials()
        assert settings.partner_id is not None  # guaranteed by require_credentials
        auth: ApiKeyAuth | BearerAuth
        if settings.api_key is not None:
            auth = ApiKeyAuth(settings.api_key)
        else:
            assert settings.username is not None
            assert settings.password is not None
            auth = BearerAuth(settings.username, settings.password)
        http = httpx.AsyncClient(
            base_url=settings.hub_url,
            timeout=settings.timeout,
            transport=transport,
            verify=tls_context(),
        )
        client = cls(
            http,
            partner_id=settings.partner_id,
            auth=auth,
            page_size=settings.page_size,
            max_concurrency=settings.max_concurrency,
            max_rate_limit_waits=max_rate_limit_waits,
        )
        client._owns_http = True
        return client

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this client built it (``from_settings``)."""
        if self._owns_http:
            await self._http.aclose()

    def __repr__(self) -> str:
        return f"HubClient(base_url={str(self._http.base_url)!r}, partner_id={self._partner_id!r})"

    # -- public calls ---------------------------------------------------------------------------

    async def list_channels(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort: str | Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> ChannelPage:
        """One page of the partner's channels."""
        params = list_params(filters, sort, limit or self._page_size, offset)
        return await self._fetch(
            ChannelPage, "GET", f"{self._partner_path}/channels", params=params
        )

    def iter_channels(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort: str | Sequence[str] | None = None,
    ) -> AsyncIterator[Channel]:
        """Every matching channel, page after page, each id once."""
        return self._paged(self.list_channels, filters, sort)

    async def get_channel(self, channel_id: str) -> Channel:
        """The channel with ``channel_id``; :class:`NotFound` if the partner has none."""
        page = await self.list_channels(filters={"id": channel_id})
        for channel in page.items:
            if channel.id == channel_id:
                return channel
        raise NotFound(f"channel {channel_id!r} not found for partner {self._partner_id!r}")

    async def list_clients(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort: str | Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> ClientPage:
        """One page of the partner's clients."""
        params = list_params(filters, sort, limit or self._page_size, offset)
        path = f"{self._partner_path}/clients"
        return await self._fetch(ClientPage, "GET", path, params=params)

    def iter_clients(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort: str | Sequence[str] | None = None,
    ) -> AsyncIterator[Client]:
        """Every matching client, page after page, each id once."""
        return self._paged(self.list_clients, filters, sort)

    async def create_channel_api_key(self, channel_id: str) -> ChannelApiKey:
        """Create a Messaging API key for ``channel_id`` (the key is a ``SecretStr``).

        Creating a key revokes the channel's earlier keys. A 403 or 400 answer raises
        :class:`PermissionPending` (the client has not granted permission yet); 401 stays
        :class:`AuthError`.
        """
        path = f"{self._partner_path}/channels/{_segment(channel_id)}/api_keys"
        try:
            return await self._fetch(ChannelApiKey, "POST", path, sensitive=True)
        except (AuthError, HubRequestError) as exc:
            if exc.status_code in (400, 403):
                raise PermissionPending.from_error(exc, channel_id) from exc
            raise

    async def get_webhook_url(self) -> str | None:
        """The partner webhook URL 360dialog posts events to, or ``None`` if unset."""
        data = await self._fetch(None, "GET", f"{self._partner_path}/webhook_url")
        url = data.get("webhook_url")
        return str(url) if url else None

    async def set_webhook_url(self, url: str) -> None:
        """Point the partner webhook at ``url``."""
        path = f"{self._partner_path}/webhook_url"
        await self._send("POST", path, json={"webhook_url": url})

    async def get_partner(self) -> dict[str, Any]:
        """The partner object (``id``, ``brand_name``, ``webhook_url``, ...)."""
        return await self._fetch(None, "GET", self._partner_path)

    # -- layers ---------------------------------------------------------------------------------

    async def _paged(
        self, fetch: PageFetcher, filters: Mapping[str, Any] | None, sort: Any
    ) -> AsyncIterator[Any]:
        """Walk all pages of ``fetch``: offset by items received, stop at total or empty."""
        seen: set[str] = set()
        offset = 0
        while True:
            page = await fetch(filters=filters, sort=sort, limit=self._page_size, offset=offset)
            for item in page.items:
                if item.id not in seen:
                    seen.add(item.id)
                    yield item
            offset += len(page.items)
            if not page.items or (page.total is not None and offset >= page.total):
                return

    async def _fetch(self, model: type[M] | None, method: str, path: str, **kw: Any) -> Any:
        """Send, decode the JSON object and validate it as ``model`` (a dict when None)."""
        sensitive = kw.pop("sensitive", False)
        response = await self._send(method, path, **kw)
        data = decode_object(response, sensitive=sensitive)
        return data if model is None else validate(model, data, response, sensitive=sensitive)

    async def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """Authenticate, re-login once on a bearer 401, and raise for any failure status."""
        headers = await self._auth.headers(self._http)
        response = await self._paced(method, path, headers=headers, **kw)
        if response.status_code == 401 and self._auth.refreshable:
            self._auth.invalidate(headers)
            headers = await self._auth.headers(self._http)
            response = await self._paced(method, path, headers=headers, **kw)
        if not response.is_success:
            raise error_for_response(response)
        return response

    async def _paced(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """Hold a concurrency slot; wait out up to ``max_rate_limit_waits`` 429 answers."""
        # The slot is held while waiting: a 429 means the partner as a whole is over budget.
        async with self._slots:
            for attempt in range(self._max_waits + 1):
                response = await self._send_one(method, path, **kw)
                if response.status_code != 429 or attempt == self._max_waits:
                    return response
                delay = self._rate_limit_delay(response, attempt)
                log.debug("%s %s rate limited; waiting %.2fs", method, path, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_one(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """Exactly one HTTP request; transport failures become :class:`HubUnavailable`."""
        request = self._http.build_request(method, path, **kw)
        log.debug("%s %s", method, request.url.path)
        try:
            response = await self._http.send(request)
        except httpx.TransportError as exc:
            raise error_for_transport(exc, request) from exc
        log.debug("%s %s -> %d", method, request.url.path, response.status_code)
        return response

    def _rate_limit_delay(self, response: httpx.Response, attempt: int) -> float:
        """``Retry-After`` capped at ``max_retry_after``, else exponential backoff with jitter."""
        retry_after = parse_retry_after(response)
        if retry_after is None:
            retry_after = self.backoff_base * 2**attempt * random.uniform(0.5, 1.5)
        return min(retry_after, self._max_retry_after)


def _segment(value: str) -> str:
    """``value`` percent-encoded as one URL path segment."""
    return quote(value, safe="")
