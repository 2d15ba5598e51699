"""The end of 360dialog's signup popup: new channels, and the browser sent to the partner.

When a client finishes the popup, 360dialog sends their browser to the partner's redirect URL
(``partner_redirect_url``) with ``?client=<id>&channels=[<id>,<id>]&revoked=...``. The list is in
brackets but is *not* JSON (the ids are unquoted): :func:`redirect_url` builds it that way.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

__all__ = ["follow_redirect", "redirect_url"]

FOLLOW_TIMEOUT = 10.0  # seconds the partner's redirect page may take

# Characters left as they are in the query: the brackets and commas real redirects carry.
_SAFE = "[],-_"


def redirect_url(
    base: str, *, client_id: str, channel_ids: Sequence[str], revoked: Sequence[str] = ()
) -> str:
    """``base`` with ``client``, ``channels=[a,b]`` and ``revoked`` appended to its query."""
    query = "&".join(
        (
            f"client={quote(client_id, safe=_SAFE)}",
            f"channels=[{','.join(quote(cid, safe='-_') for cid in channel_ids)}]",
            f"revoked={','.join(quote(cid, safe='-_') for cid in revoked)}",
        )
    )
    parts = urlsplit(base)
    joined = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, ""))


async def follow_redirect(url: str) -> dict[str, object]:
    """What a browser would get at ``url`` (not following it further): status and Location."""
    async with httpx.AsyncClient(timeout=FOLLOW_TIMEOUT) as http:
        try:
            response = await http.get(url)
        except httpx.HTTPError as exc:
            return {"status_code": None, "location": None, "error": type(exc).__name__}
    return {
        "status_code": response.status_code,
        "location": response.headers.get("location"),
        "error": None,
    }
