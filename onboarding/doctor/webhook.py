"""The doctor's partner-webhook check: is the registered partner webhook URL this receiver's?

One read-only Partner API request (``GET /partners/{partner_id}/webhook_url``); the token is
compared in constant time and never shown (:mod:`onboarding.partner_webhook`).
"""

from __future__ import annotations

import httpx

from onboarding.doctor.result import Check
from onboarding.hub import HubClient
from onboarding.hub.errors import HubError
from onboarding.partner_webhook import Match, compare
from onboarding.settings import HubSettings, Settings

__all__ = ["check_partner_webhook"]

NAME = "partner webhook URL"
_FIX = {
    Match.NOT_SET: "run `onboarding webhook register` (ONBOARDING_PUBLIC_URL is this receiver's "
    "public address); until then only the sweep finds changes",
    Match.OTHER_TOKEN: "run `onboarding webhook register`, or set ONBOARDING_WEBHOOK_TOKEN to the "
    "token registered",
    Match.OTHER_HOST: "run `onboarding webhook register` if this receiver moved, or fix "
    "ONBOARDING_PUBLIC_URL",
    Match.ELSEWHERE: "if events should come here, run `onboarding webhook register` (a relay in "
    "front of this receiver is fine: then ignore this)",
    Match.UNKNOWN: "set ONBOARDING_WEBHOOK_TOKEN (the receiver needs it too)",
}


async def check_partner_webhook(
    hub: HubSettings, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> Check:
    """Read the registered partner webhook URL; warn unless it is this receiver's."""
    try:
        async with HubClient.from_settings(hub, transport=transport) as client:
            registered = await client.get_webhook_url()
    except HubError as exc:
        status = f" (HTTP {exc.status_code})" if exc.status_code else ""
        return Check.warn(NAME, f"could not be read{status}", "see the Partner API check")
    verdict = compare(registered, token=settings.webhook_token, public_url=settings.public_url)
    if verdict.ours:
        return Check.ok(NAME, verdict.summary)
    return Check.warn(NAME, verdict.summary, _FIX[verdict.match])
