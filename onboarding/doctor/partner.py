"""The Partner API check: ONE list request (a small page of channels), its raw answer compared.

The client is the product's own :class:`~onboarding.hub.HubClient`, so auth and error mapping are
the real ones; a recording transport keeps the raw body of the list answer for the comparison.

With ``record_dir`` the check also reads the partner object, a page of clients and the webhook
URL (never anything that changes the account: no key is created), and
:class:`~onboarding.doctor.record.RecordingTransport` writes each answer, redacted, to that
directory.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import httpx

from onboarding.doctor.compare import PageComparison, compare_page
from onboarding.doctor.record import RecordingTransport
from onboarding.doctor.result import Check
from onboarding.hub import HubClient
from onboarding.hub.errors import AuthError, BadResponse, HubError, HubUnavailable, NotFound
from onboarding.settings import HubSettings

__all__ = ["check_partner_api"]

NAME = "Partner API"
MODELS = "Partner API vs our models"
RECORDED = "Partner API answers recorded"


class _Recorder(httpx.AsyncBaseTransport):
    """Pass requests on and keep the last channel-list answer's body."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.list_body: bytes | None = None
        self.list_requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path.endswith("/channels"):
            body = await response.aread()
            self.list_requests += 1
            self.list_body = body
            return httpx.Response(
                response.status_code, headers=response.headers, content=body, request=request
            )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _decoded(body: bytes | None) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


# What each Partner API error means for the doctor: (error, what happened, how to fix it).
_FAILURES: tuple[tuple[type[HubError], str, str], ...] = (
    (
        AuthError,
        " refused the credentials",
        "check D360_API_KEY (or D360_USERNAME/D360_PASSWORD) in the Partner Hub",
    ),
    (NotFound, ": not found", "check D360_HUB_URL (it ends in /api/v2) and D360_PARTNER_ID"),
    (
        HubUnavailable,
        " is unreachable",
        "check D360_HUB_URL, the network and https://status.360dialog.com",
    ),
    (
        BadResponse,
        " answered something unexpected",
        "the server did not answer a channel page: check D360_HUB_URL; report the lines below",
    ),
)


def _failure(exc: HubError, hub: HubSettings) -> Check:
    status = f" (HTTP {exc.status_code})" if exc.status_code else ""
    if isinstance(exc, AuthError) and exc.forbidden:
        fix = "the credentials are valid but not for this partner: check D360_PARTNER_ID"
        return Check.fail(NAME, f"{hub.hub_url} refused access{status}", fix)
    for kind, what, fix in _FAILURES:
        if isinstance(exc, kind):
            return Check.fail(NAME, f"{hub.hub_url}{what}{status}", fix)
    return Check.fail(NAME, f"{hub.hub_url}: {type(exc).__name__}{status}", "see the message above")


def _models_check(comparison: PageComparison) -> Check:
    if comparison.differs:
        return Check.warn(
            MODELS,
            "the server's answer differs from our models",
            "please report these lines (they hold names and counts only) with your issue",
            details=comparison.lines(),
        )
    return Check.ok(MODELS, "the channel page matches our models", details=comparison.lines())


def _secrets(hub: HubSettings) -> list[str]:
    """The configured credentials, masked wherever they might be echoed."""
    values = [hub.api_key, hub.password]
    return [value.get_secret_value() for value in values if value is not None]


async def _read_more(client: HubClient, limit: int) -> None:
    """The read-only calls recorded besides the channel page (their failures are recorded too)."""
    for call in (
        client.get_partner,
        lambda: client.list_clients(limit=limit),
        client.get_webhook_url,
    ):
        # A failure's answer is in the recording; the channel check says what is wrong.
        with contextlib.suppress(HubError):
            await call()


async def check_partner_api(
    hub: HubSettings,
    *,
    limit: int = 5,
    transport: httpx.AsyncBaseTransport | None = None,
    record_dir: Path | None = None,
) -> list[Check]:
    """Reach the Partner API with one channel-list request; check it and compare its answer.

    With ``record_dir``, also make the other read-only calls and save every answer, redacted.
    """
    if not hub.has_credentials or not hub.partner_id:
        return [
            Check.warn(
                NAME,
                "no Partner API credentials: not checked",
                "set D360_PARTNER_ID and D360_API_KEY (or try `onboarding up --demo`)",
            )
        ]
    inner = transport or httpx.AsyncHTTPTransport()
    recording = None
    if record_dir is not None:
        recording = RecordingTransport(inner, record_dir, secrets=_secrets(hub))
        inner = recording
    recorder = _Recorder(inner)
    page = None
    try:
        async with HubClient.from_settings(hub, transport=recorder) as client:
            page = await client.list_channels(limit=limit)
            if recording is not None:
                await _read_more(client, limit)
    except HubError as exc:
        checks = [_failure(exc, hub), *_recorded(recording)]
        raw = _decoded(recorder.list_body)
        if isinstance(exc, BadResponse):
            if raw is None:
                checks[0].details.append("the body was not JSON")
            else:
                checks.append(_models_check(compare_page(raw, requested_limit=limit)))
        return checks
    total = "an unstated number of" if page.total is None else str(page.total)
    summary = f"{hub.hub_url}: credentials accepted, {total} channel(s) in all"
    comparison = compare_page(_decoded(recorder.list_body), requested_limit=limit)
    return [Check.ok(NAME, summary), _models_check(comparison), *_recorded(recording)]


def _recorded(recording: RecordingTransport | None) -> list[Check]:
    """A check naming the files written, when recording."""
    if recording is None:
        return []
    if not recording.files:
        return [Check.warn(RECORDED, "no answer came back, nothing recorded")]
    where = recording.files[0].parent
    return [
        Check.ok(
            RECORDED,
            f"{len(recording.files)} answer(s) saved to {where} (ids kept; secrets, phone "
            "numbers, e-mails and URL paths masked): look them over, then send them to us",
            details=[path.name for path in recording.files],
        )
    ]
