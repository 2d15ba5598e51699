"""A channel the Partner API does not find (404): looked for again for a grace period, then failed.

A partner webhook can arrive before the Partner API lists the channel it names, so a read that
finds nothing is retried for ``ONBOARDING_UNKNOWN_CHANNEL_GRACE`` seconds from the onboarding's
start (only when a client is known: an onboarding started by hand for an id nobody vouched for
fails at once). After that, or when creating the channel's key answers 404, the onboarding ends
``failed`` with the reason :data:`NOT_FOUND` and one ``channel_not_found`` alert, never a crash.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from onboarding.alerts import AlertKind
from onboarding.history import Claim
from onboarding.lifecycle import Action, Decision
from onboarding.runtime import settings

__all__ = ["NOT_FOUND", "NOT_LISTED_YET", "look_again_at", "missing_channel"]

NOT_FOUND = "channel not found"
NOT_LISTED_YET = "channel not listed by the Partner API yet; looking again"


def _give_up_at(claim: Claim) -> datetime | None:
    """When the grace for an unlisted channel ends; None when there is none for this run."""
    if claim.client_id in (None, "", "unknown"):
        return None
    grace = timedelta(seconds=settings().unknown_channel_grace)
    return min(claim.started_at + grace, claim.deadline_at)


def missing_channel(claim: Claim, *, reading: bool) -> Decision:
    """What a 404 for the channel means: look again (a read within the grace) or fail."""
    give_up = _give_up_at(claim) if reading else None
    if give_up is not None and datetime.now(UTC) < give_up:
        return Decision(Action.REPARK, NOT_LISTED_YET)
    return Decision(Action.FAIL, NOT_FOUND, AlertKind.CHANNEL_NOT_FOUND)


def look_again_at(claim: Claim, step: Decision) -> datetime | None:
    """For :data:`NOT_LISTED_YET`, when to read again: a longest poll away, at most the grace."""
    give_up = _give_up_at(claim)
    if step.reason != NOT_LISTED_YET or give_up is None:
        return None
    return min(give_up, datetime.now(UTC) + timedelta(seconds=settings().poll_max))
