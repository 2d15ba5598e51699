"""The one line `up` prints when the registered partner webhook URL is not this receiver's."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from onboarding.hub import HubClient
from onboarding.hub.errors import HubError
from onboarding.partner_webhook import compare
from onboarding.settings import ConfigError, HubSettings, Settings

__all__ = ["webhook_warning"]


async def webhook_warning(
    settings: Settings,
    hub: HubSettings,
    token: SecretStr,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> str | None:
    """A warning sentence unless the partner webhook URL is this receiver's (``token``).

    ``None`` when it is, or when it cannot be read (no credentials, Partner API down: `doctor`
    says more). The sentence holds no token.
    """
    if not hub.has_credentials or not hub.partner_id:
        return None
    try:
        async with HubClient.from_settings(hub, transport=transport) as client:
            registered = await client.get_webhook_url()
    except (HubError, ConfigError):
        return None
    verdict = compare(registered, token=token, public_url=settings.public_url)
    if verdict.ours:
        return None
    return (
        f"the partner webhook URL is not this receiver ({verdict.summary}): run "
        "`onboarding webhook register`"
    )
