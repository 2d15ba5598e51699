"""The alert kinds: how bad each is, whom it concerns, what to check; and their dedup keys."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["AlertKind", "KindInfo", "Severity", "dedup_key", "kind_info"]


class AlertKind(StrEnum):
    """The problems an onboarding can raise an alert for."""

    CHANNEL_ERROR = "channel_error"
    CHANNEL_NOT_FOUND = "channel_not_found"
    SETUP_DEADLINE_EXCEEDED = "setup_deadline_exceeded"
    UNKNOWN_STATUS = "unknown_status"
    AUTH_FAILED = "auth_failed"
    HUB_UNAVAILABLE = "hub_unavailable"
    FLOW_CRASHED = "flow_crashed"
    PERMISSION_PENDING = "permission_pending"
    CALLBACK_FAILED = "callback_failed"
    ACCOUNT_PROBLEM = "account_problem"
    INBOX_DEAD = "inbox_dead"


class Severity(StrEnum):
    """How urgently a person should look."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class KindInfo:
    """Static facts about one kind: severity, scope, a readable title and what to check."""

    severity: Severity
    partner_wide: bool
    title: str
    hint: str


_KINDS: dict[AlertKind, KindInfo] = {
    AlertKind.CHANNEL_ERROR: KindInfo(
        Severity.ERROR,
        partner_wide=False,
        title="channel setup failed",
        hint=(
            "Read setup_info.error on the channel in the Partner Hub and the WhatsApp Business "
            "Account's status at Meta (fb_account_status); the client may need to redo the "
            "embedded signup."
        ),
    ),
    AlertKind.CHANNEL_NOT_FOUND: KindInfo(
        Severity.ERROR,
        partner_wide=False,
        title="channel not found at the Partner API",
        hint=(
            "The Partner API answered 404 for this channel id (reading it or creating its key). "
            "Check the id in the Partner Hub: a forged or mistyped webhook, a channel deleted "
            "or moved to another partner. Start the onboarding again once the channel exists."
        ),
    ),
    AlertKind.SETUP_DEADLINE_EXCEEDED: KindInfo(
        Severity.WARNING,
        partner_wide=False,
        title="channel still setting up past its deadline",
        hint=(
            "Open the channel's page in the Partner Hub and ask the client whether they finished "
            "the embedded signup (phone verification, display name approval)."
        ),
    ),
    AlertKind.UNKNOWN_STATUS: KindInfo(
        Severity.WARNING,
        partner_wide=False,
        title="channel reported a status we do not know",
        hint=(
            "The Partner API returned a status value this version does not handle (see 'What "
            "happened'); tell the maintainers so it can be mapped."
        ),
    ),
    AlertKind.AUTH_FAILED: KindInfo(
        Severity.CRITICAL,
        partner_wide=True,
        title="Partner API refused our credentials",
        hint=(
            "Check D360_API_KEY (or D360_USERNAME/D360_PASSWORD) and the key's partner "
            "permissions in the Partner Hub. Every onboarding of this partner is blocked."
        ),
    ),
    AlertKind.HUB_UNAVAILABLE: KindInfo(
        Severity.CRITICAL,
        partner_wide=True,
        title="Partner API unavailable after retries",
        hint=(
            "Check 360dialog's status page and this host's network, DNS and proxy "
            "(D360_HUB_URL). Onboardings resume once the API answers."
        ),
    ),
    AlertKind.PERMISSION_PENDING: KindInfo(
        Severity.WARNING,
        partner_wide=False,
        title="client has not granted permission for the channel's key",
        hint=(
            "The client pays 360dialog directly and must allow you to manage the number: ask "
            "them to grant the permission in the 360dialog Client Hub. The onboarding goes on "
            "by itself once they have."
        ),
    ),
    AlertKind.CALLBACK_FAILED: KindInfo(
        Severity.ERROR,
        partner_wide=False,
        title="could not deliver the channel's API key to your callback",
        hint=(
            "Your completion callback (ONBOARDING_CALLBACK_URL) refused or did not answer for the "
            "whole retry window (or, with ONBOARDING_CHANNEL_WEBHOOK_URL, the Messaging API did "
            "not take the number's webhook: the run's log in Prefect says which). Fix "
            "it, then run `onboarding rekey CHANNEL_ID` to send a new key."
        ),
    ),
    AlertKind.ACCOUNT_PROBLEM: KindInfo(
        Severity.ERROR,
        partner_wide=False,
        title="Meta reported a problem with the client's account",
        hint=(
            "360dialog sent an account_violation or account_restriction event: read it in the "
            "Partner Hub and the WhatsApp Manager, and tell the client."
        ),
    ),
    AlertKind.FLOW_CRASHED: KindInfo(
        Severity.ERROR,
        partner_wide=False,
        title="onboarding run crashed or failed",
        hint="Open the Prefect run (link above) and read its logs and the failed task's traceback.",
    ),
    AlertKind.INBOX_DEAD: KindInfo(
        Severity.ERROR,
        partner_wide=True,
        title="partner webhooks could not be handed on",
        hint=(
            "Read the error of the inbound_event rows with outcome 'dead' (ids above) and the "
            "receiver's log. The watcher's sweep still finds their channels; set a row's outcome "
            "back to 'failed' and attempts to 0 to have it replayed."
        ),
    ),
}


def kind_info(kind: AlertKind | str) -> KindInfo:
    """The static facts about ``kind`` (raises ``ValueError`` for an unknown kind)."""
    return _KINDS[AlertKind(kind)]


def dedup_key(kind: AlertKind | str, *, partner_id: str, channel_id: str | None) -> str:
    """The key that makes one alert per problem: per channel, or per partner for partner-wide kinds.

    Channel-scoped kinds need a ``channel_id``; partner-wide kinds ignore it so every channel of
    the partner lands on the same alert.
    """
    kind = AlertKind(kind)
    if kind_info(kind).partner_wide:
        return f"{kind}:partner:{partner_id}"
    if not channel_id:
        raise ValueError(f"alert kind {kind} is per channel: channel_id is required")
    return f"{kind}:channel:{partner_id}:{channel_id}"
