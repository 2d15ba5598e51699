"""The partner webhook URL: where 360dialog posts the partner's events, and whether it is ours.

The Partner API reads and sets it (``GET``/``POST /partners/{partner_id}/webhook_url``, body
``{"webhook_url": ...}``). This receiver's URL is ``ONBOARDING_PUBLIC_URL`` plus
``/hooks/360dialog/<ONBOARDING_WEBHOOK_TOKEN>``. Whether a registered URL is this receiver's is
decided by its token, compared in constant time, and (when ``ONBOARDING_PUBLIC_URL`` is set) its
scheme, host and path prefix. Nothing here returns or prints the token: shown URLs have it masked
(:func:`shown`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import SecretStr

from onboarding.redact import mask_token, mask_url
from onboarding.settings import ConfigError, Settings

__all__ = [
    "HOOK_PREFIX",
    "Match",
    "Verdict",
    "compare",
    "receiver_url",
    "shown",
]

HOOK_PREFIX = "/hooks/360dialog/"


class Match(StrEnum):
    """How a registered partner webhook URL relates to this receiver."""

    OURS = "ours"  # this receiver's URL, token and all
    NOT_SET = "not_set"  # no partner webhook URL at all: events never arrive
    OTHER_TOKEN = "other_token"  # a hook path of ours, with another token (404 for every event)
    OTHER_HOST = "other_host"  # the token matches, the host is not ONBOARDING_PUBLIC_URL's
    ELSEWHERE = "elsewhere"  # not a receiver URL of this product
    UNKNOWN = "unknown"  # no ONBOARDING_WEBHOOK_TOKEN here: cannot tell


@dataclass(frozen=True)
class Verdict:
    """A comparison's outcome and one sentence saying it (no token in it)."""

    match: Match
    summary: str

    @property
    def ours(self) -> bool:
        """True when the registered URL is this receiver's."""
        return self.match is Match.OURS


def receiver_url(settings: Settings, *, token: SecretStr | None = None) -> str:
    """This receiver's public hook URL, token included (keep it off screens: :func:`shown`).

    Raises :class:`ConfigError` without ``ONBOARDING_PUBLIC_URL`` or a token.
    """
    token = token or settings.webhook_token
    if not settings.public_url:
        raise ConfigError(
            "ONBOARDING_PUBLIC_URL is not set: it is this receiver's address as 360dialog "
            "reaches it (https://hooks.example.com); or pass --url"
        )
    if token is None or not token.get_secret_value():
        raise ConfigError("ONBOARDING_WEBHOOK_TOKEN is not set: the hook URL needs it")
    return f"{settings.public_url}{HOOK_PREFIX}{token.get_secret_value()}"


def _token_of(url: str) -> str | None:
    """The token segment of a ``.../hooks/360dialog/<token>`` URL, else ``None``."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    _head, sep, tail = path.rpartition(HOOK_PREFIX)
    if not sep or not tail or "/" in tail.strip("/"):
        return None
    return tail.strip("/")


def shown(url: str | None, token: SecretStr | None = None) -> str:
    """``url`` fit to print: a hook token keeps its first four characters, secrets masked.

    ``token`` (ours) is masked wherever it appears, even outside the hook path.
    """
    if not url:
        return "(not set)"
    found = _token_of(url)
    text = url
    if found:
        head = url[: url.rfind(found)]
        rest = url[url.rfind(found) + len(found) :]
        text = f"{head}{mask_token(found)}{rest}"
    if token is not None and token.get_secret_value():
        text = text.replace(token.get_secret_value(), mask_token(token))
    return mask_url(text)


def _same_base(url: str, public_url: str) -> bool:
    """True when ``url`` is under ``public_url`` (scheme, host, port and path prefix)."""
    try:
        ours, theirs = urlsplit(public_url), urlsplit(url)
        same_host = (ours.scheme, ours.hostname, ours.port) == (
            theirs.scheme,
            theirs.hostname,
            theirs.port,
        )
    except ValueError:
        return False
    return same_host and theirs.path == ours.path.rstrip("/") + HOOK_PREFIX + (_token_of(url) or "")


def compare(registered: str | None, *, token: SecretStr | None, public_url: str | None) -> Verdict:
    """Whether ``registered`` is this receiver's URL; the token compared in constant time."""
    if not registered:
        return Verdict(Match.NOT_SET, "no partner webhook URL is registered: no event arrives")
    if token is None or not token.get_secret_value():
        return Verdict(
            Match.UNKNOWN,
            f"registered: {shown(registered)}; ONBOARDING_WEBHOOK_TOKEN is not set here, so "
            "whether it is this receiver cannot be told",
        )
    found = _token_of(registered)
    if found is None:
        return Verdict(
            Match.ELSEWHERE, f"registered: {shown(registered)}, not this receiver's hook path"
        )
    same = hmac.compare_digest(found.encode(), token.get_secret_value().encode())
    if not same:
        return Verdict(
            Match.OTHER_TOKEN,
            f"registered: {shown(registered)}, a hook URL with another token than "
            "ONBOARDING_WEBHOOK_TOKEN (every event would be refused)",
        )
    if public_url and not _same_base(registered, public_url):
        return Verdict(
            Match.OTHER_HOST,
            f"registered: {shown(registered, token)}, the right token but not under "
            f"ONBOARDING_PUBLIC_URL ({mask_url(public_url)})",
        )
    return Verdict(Match.OURS, f"registered: {shown(registered, token)}, this receiver")
