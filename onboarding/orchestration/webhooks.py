"""A partner webhook, handed on from the inbox: record what it says, then reconcile it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from onboarding.lifecycle import Event, Meaning, Seen, meaning_of
from onboarding.orchestration.reconciler import Signal, reconcile
from onboarding.receiver.events import HandoffEvent
from onboarding.runtime import history_engine
from onboarding.store import ObservationSource, find_runs, record_observation, session_scope

__all__ = ["reconcile_event"]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _moment(value: Any) -> datetime | None:
    """An ISO-8601 time as 360dialog writes it (``2023-02-28T14:36:45Z``), else None."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


SIGNUP_REDIRECT = "signup_redirect"  # the receiver's own event: a verified id from the redirect


def _observation(event: HandoffEvent) -> Event | Seen:
    data = event.data
    if event.event_type == SIGNUP_REDIRECT:  # data is the channel as the Partner API answered
        return Seen(
            _text(data.get("availability_status")),
            created_at=_moment(data.get("created_at")),
            source="signup",
        )
    return Event(
        name=event.event_type,
        availability_status=_text(data.get("availability_status")),
        data_status=_text(data.get("status")),
        created_at=_moment(data.get("created_at")),
    )


def _client_channels(client_id: str) -> list[str]:
    """The channels of ``client_id`` with an active onboarding (a client-wide event)."""
    with session_scope(history_engine()) as session:
        return [run.channel_id for run in find_runs(session, client_id=client_id) if run.is_active]


def _note_status(event: HandoffEvent) -> None:
    """Record the channel's status as the webhook carried it (the start of its timeline)."""
    status = _text(event.data.get("availability_status"))
    if event.channel_id is None or status is None:
        return
    with session_scope(history_engine()) as session:
        record_observation(
            session,
            channel_id=event.channel_id,
            availability_status=status,
            status=_text(event.data.get("status")),
            source=ObservationSource.WEBHOOK,
        )


async def reconcile_event(event: HandoffEvent) -> str:
    """The receiver's handoff: ``"handled"`` once reconciled, ``"ignored"`` when it needs nothing.

    An event about no channel, or one that only needs recording (client, template and unknown
    events), is ignored. Raises when Prefect or the history cannot be reached, so the inbox
    keeps the event for the replay.
    """
    observation = _observation(event)
    if isinstance(observation, Event) and meaning_of(event.event_type) is Meaning.RECORD:
        return "ignored"
    if event.channel_id is not None:
        channels = [event.channel_id]
    elif event.client_id is not None and meaning_of(event.event_type) is Meaning.CANCEL:
        channels = _client_channels(event.client_id)
    else:
        return "ignored"
    _note_status(event)
    signals = [Signal(channel_id, event.client_id, observation) for channel_id in channels]
    trigger = "signup" if event.event_type == SIGNUP_REDIRECT else "webhook"
    await reconcile(signals, trigger=trigger)
    return "handled"
