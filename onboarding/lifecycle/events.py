"""What each partner event means for an onboarding: the one table, in code.

360dialog sends ``{"event": "<name>", "data": {...}}``. The names below are the ones 360dialog
documents or real integrations have been seen to act on; cancellation and termination events are
matched by what their name says, template events by their prefix. An event we do not know is
stored and acknowledged, never rejected: it only means :attr:`Meaning.RECORD`.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["EVENT_MEANINGS", "Meaning", "is_known_event", "meaning_of"]


class Meaning(StrEnum):
    """What an event asks the lifecycle to consider."""

    START = "start"  # a channel exists and is being set up: make sure an onboarding waits for it
    SETTLED = "settled"  # the channel may have left setting_up: wake its onboarding to look
    PERMISSION = "permission"  # the client allowed the partner to create the channel's key
    CANCEL = "cancel"  # the channel or client was cancelled/terminated: end the onboarding
    ACCOUNT_PROBLEM = "account_problem"  # Meta flagged the account: alert, onboarding unchanged
    RECORD = "record"  # nothing to do beyond keeping it (client, template and unknown events)


EVENT_MEANINGS: dict[str, tuple[Meaning, str]] = {
    "client_created": (Meaning.RECORD, "a client signed up; its channels follow"),
    "channel_created": (Meaning.START, "first event after a client signs up"),
    "channel_submitted": (Meaning.START, "submitted to Meta; still setting up"),
    "channel_ready": (Meaning.SETTLED, "the number is ready to be registered"),
    "channel_running": (Meaning.SETTLED, "the number went into running state"),
    "channel_live": (Meaning.SETTLED, "the number is live"),
    "channel_permission_granted": (
        Meaning.PERMISSION,
        "the client granted the partner permission (data.status ready): create the key",
    ),
    "account_violation": (Meaning.ACCOUNT_PROBLEM, "Meta reported a policy violation"),
    "account_restriction": (Meaning.ACCOUNT_PROBLEM, "Meta restricted the account"),
}
"""Event name -> (meaning, what 360dialog says it is). README's event table is this table."""

_CANCEL_WORDS = ("cancel", "terminat")
_TEMPLATE_PREFIX = "template_"


def meaning_of(event: str) -> Meaning:
    """The meaning of the event named ``event`` (unknown names mean :attr:`Meaning.RECORD`)."""
    name = event.strip().lower()
    if name in EVENT_MEANINGS:
        return EVENT_MEANINGS[name][0]
    if any(word in name for word in _CANCEL_WORDS):
        return Meaning.CANCEL
    return Meaning.RECORD  # template_* events, and names 360dialog may add later


def is_known_event(event: str) -> bool:
    """True for the names in the table, cancellation/termination and template events."""
    name = event.strip().lower()
    return (
        name in EVENT_MEANINGS
        or any(word in name for word in _CANCEL_WORDS)
        or name.startswith(_TEMPLATE_PREFIX)
    )
