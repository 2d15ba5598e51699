"""The onboarding lifecycle: observations and what the history knows in, decisions out.

Every signal about a channel is an *observation*: a partner webhook, a sweep's or the signup
redirect's read of the channel, the onboarding run's own read, the run's attempts at the key and
the callback, a timer, a flow run Prefect lost. :func:`decide` takes one observation and the
channel's :class:`History` and returns :class:`Decision` values as plain data; the orchestration
adapter carries them out. Every rule of the lifecycle is written here, once, with no I/O.

Level-triggered, as Kubernetes controllers are: deciding again on the same observation after its
decisions were carried out gives :attr:`Action.NOTHING`, so lost, duplicated or reordered signals
are harmless and the sweep can always re-send everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from onboarding.lifecycle.events import Meaning, meaning_of


class Verdict(StrEnum):
    """What an ``availability_status`` says about the channel."""

    WAIT = "wait"  # setting_up
    READY = "ready"
    ERROR = "error"
    UNKNOWN = "unknown"  # missing, or a value 360dialog never documented


_VERDICTS = {"setting_up": Verdict.WAIT, "ready": Verdict.READY, "error": Verdict.ERROR}


def classify(availability_status: str | None) -> Verdict:
    """The verdict for an ``availability_status``; missing and unknown values are UNKNOWN."""
    return _VERDICTS.get((availability_status or "").strip().lower(), Verdict.UNKNOWN)


# --- what the history knows ------------------------------------------------------------------


class Waiting(StrEnum):
    """What an active onboarding waits for."""

    CHANNEL = "channel"  # the channel to leave setting_up (parked, or executing)
    PERMISSION = "permission"  # the client to let the partner create the channel's key
    DELIVERY = "delivery"  # the partner's callback to take the key (state ``undelivered``)


@dataclass(frozen=True)
class ActiveRun:
    """The channel's active onboarding, as the history has it."""

    run_id: int
    waiting_for: Waiting = Waiting.CHANNEL
    deadline_at: datetime | None = None
    since: datetime | None = None  # when it began waiting for permission or delivery
    retry_at: datetime | None = None  # when the next key or delivery attempt is due


@dataclass(frozen=True)
class History:
    """What the history knows about one channel (and about this installation)."""

    active: ActiveRun | None = None
    finished: str | None = None  # final state of its latest finished run, None if never run
    installed_at: datetime | None = None  # the installation's first sweep; None before it


@dataclass(frozen=True)
class Policy:
    """The lifecycle's time limits (from the settings)."""

    permission_alert_after: timedelta = timedelta(hours=24)
    callback_retry_window: timedelta = timedelta(hours=24)


# --- observations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """A partner webhook about a channel."""

    name: str
    availability_status: str | None = None
    data_status: str | None = None  # ``data.status`` (``ready`` on a permission grant)
    created_at: datetime | None = None


@dataclass(frozen=True)
class Seen:
    """The channel as a sweep or the signup redirect read it from the Partner API."""

    availability_status: str | None
    created_at: datetime | None = None
    source: str = "sweep"  # or "signup"


@dataclass(frozen=True)
class RunRead:
    """The onboarding run's own read of its channel."""

    availability_status: str | None
    now: datetime


@dataclass(frozen=True)
class KeyRefused:
    """The Partner API refused to create the channel's key (403/400): no client permission yet."""


@dataclass(frozen=True)
class DeliveryFailed:
    """The partner's callback did not take the key; ``first_failed_at`` began this outage."""

    first_failed_at: datetime
    now: datetime


@dataclass(frozen=True)
class Tick:
    """Time passed (every sweep): deadlines, permission waits, delivery retries."""

    now: datetime


@dataclass(frozen=True)
class FlowRunGone:
    """The active onboarding's flow run was deleted, is missing, or a person cancelled it.

    ``flow_run_id`` names the flow run found gone (None: the run never got one recorded); news
    about a flow run the onboarding has since left is old news, and its reconciler drops it.
    """

    cancelled_by_person: bool
    flow_run_id: str | None = None


@dataclass(frozen=True)
class Requested:
    """Someone asked for the channel's onboarding: ``onboarding onboard``, an event, a flow run.

    ``by_its_last_flow_run``: the asker is the flow run the channel's last onboarding ended with
    (parked when a cancel came, and due now).
    """

    by_its_last_flow_run: bool = False


Observation = Event | Seen | RunRead | KeyRefused | DeliveryFailed | Tick | FlowRunGone | Requested


# --- decisions ---------------------------------------------------------------------------------


class Action(StrEnum):
    """What to do; the adapter knows how."""

    OPEN = "open"  # open a history run and a parked flow run
    OPEN_NOW = "open_now"  # the same, due at once (the channel already settled)
    WAKE = "wake"  # make the parked flow run due (compare-and-set: only a parked run wakes)
    REPARK = "repark"  # the run found setting_up: wait again without holding a process
    FINISH = "finish"  # create the key, deliver it, complete the run, resolve the channel's alerts
    FAIL = "fail"  # alert (``alert``) and end the run ``failed``
    TIME_OUT = "time_out"  # alert and end the run ``timed_out``
    AWAIT_PERMISSION = "await_permission"  # park until the client grants permission
    UNDELIVERED = "undelivered"  # park as ``undelivered`` and retry the delivery later
    CANCEL = "cancel"  # end the run ``cancelled``: no alert, no follow-up
    ADOPT = "adopt"  # record a channel that was ready before this installation: never keyed
    REOPEN = "reopen"  # a new parked flow run for the still-active onboarding
    ALERT = "alert"  # raise ``alert`` without changing the run
    NOTHING = "nothing"  # nothing to do (``reason`` says why)


@dataclass(frozen=True)
class Decision:
    """One thing to do, and why (the reason is shown in logs, states and the history)."""

    action: Action
    reason: str
    alert: str | None = None  # an AlertKind value, for FAIL, TIME_OUT and ALERT


def _do(action: Action, reason: str, alert: str | None = None) -> tuple[Decision, ...]:
    return (Decision(action, reason, alert),)


ONBOARDED = ("completed", "adopted")  # the channel has a key (ours, or one from before us)
_LEFT_ALONE = (*ONBOARDED, "cancelled")  # a sweep never starts these again


def decide(
    observation: Observation, history: History, policy: Policy = Policy()
) -> tuple[Decision, ...]:
    """The decisions ``observation`` calls for, given what ``history`` knows about the channel."""
    match observation:
        case Event():
            return _on_event(observation, history)
        case Seen():
            return _on_seen(observation, history)
        case RunRead():
            return _on_run_read(observation, history)
        case KeyRefused():
            if history.active is None:
                return _do(Action.NOTHING, "no active onboarding")
            return _do(Action.AWAIT_PERMISSION, "the client has not granted permission yet")
        case DeliveryFailed():
            return _on_delivery_failed(observation, history, policy)
        case Tick():
            return _on_tick(observation, history, policy)
        case FlowRunGone():
            if history.active is None:
                return _do(Action.NOTHING, "no active onboarding")
            if observation.cancelled_by_person:
                return _do(Action.CANCEL, "its flow run was cancelled in Prefect")
            return _do(Action.REOPEN, "its flow run is gone from Prefect")
        case Requested():
            return _on_request(observation, history)
    raise TypeError(f"not an observation: {observation!r}")


def _on_event(event: Event, history: History) -> tuple[Decision, ...]:
    meaning = meaning_of(event.name)
    match meaning:
        case Meaning.START:
            return _start(history, why=f"{event.name} event")
        case Meaning.SETTLED:
            if history.active is not None:
                return _wake(history.active, f"{event.name} event")
            return _settled_without_run(history, event.created_at, why=f"{event.name} event")
        case Meaning.PERMISSION:
            if history.active is not None:
                return _do(Action.WAKE, "the client granted permission")
            if (event.data_status or "").lower() != "ready":
                return _do(Action.NOTHING, "permission granted, channel not ready yet")
            return _settled_without_run(history, event.created_at, why="permission granted")
        case Meaning.CANCEL:
            if history.active is None:
                return _do(Action.NOTHING, f"{event.name}: no active onboarding")
            return _do(Action.CANCEL, f"cancelled by 360dialog ({event.name})")
        case Meaning.ACCOUNT_PROBLEM:
            return _do(Action.ALERT, f"{event.name} reported by 360dialog", "account_problem")
    return _do(Action.NOTHING, f"{event.name}: recorded, nothing to do")


def _on_request(request: Requested, history: History) -> tuple[Decision, ...]:
    """Asked for by name: never a second key for an onboarded channel; a cancelled one restarts,
    but not by the flow run it was cancelled with."""
    if history.active is not None:
        return _do(Action.NOTHING, "already being onboarded")
    if request.by_its_last_flow_run and history.finished == "cancelled":
        return _do(Action.NOTHING, "its onboarding was cancelled; nothing to do")
    if history.finished in ONBOARDED:
        return _do(
            Action.NOTHING,
            f"already onboarded ({history.finished}); no key is created: "
            "`onboarding rekey` rotates its key on purpose",
        )
    return _do(Action.OPEN, "requested")


def _on_seen(seen: Seen, history: History) -> tuple[Decision, ...]:
    verdict = classify(seen.availability_status)
    if history.active is not None:
        if verdict is Verdict.WAIT:
            return _do(Action.NOTHING, "still setting up")
        return _wake(history.active, f"channel is {seen.availability_status or 'without status'}")
    if verdict is Verdict.WAIT:
        return _start(history, why=f"seen setting_up by the {seen.source}")
    if verdict is Verdict.READY:
        if history.installed_at is None and history.finished is None and seen.source == "sweep":
            return _do(Action.ADOPT, "ready before this installation's first sweep: never keyed")
        return _settled_without_run(
            history, seen.created_at, why=f"seen ready by the {seen.source}"
        )
    return _do(
        Action.NOTHING, f"channel is {seen.availability_status or 'without status'}; not ours"
    )


def _on_run_read(read: RunRead, history: History) -> tuple[Decision, ...]:
    active = history.active
    if active is None:
        return _do(Action.NOTHING, "no active onboarding")
    match classify(read.availability_status):
        case Verdict.WAIT:
            if active.deadline_at is not None and read.now >= active.deadline_at:
                return _do(
                    Action.TIME_OUT,
                    f"still setting_up at the deadline ({active.deadline_at:%Y-%m-%d %H:%M} UTC)",
                    "setup_deadline_exceeded",
                )
            return _do(Action.REPARK, "still setting up")
        case Verdict.READY:
            return _do(Action.FINISH, "channel is ready")
        case Verdict.ERROR:
            return _do(Action.FAIL, "channel is in error", "channel_error")
    return _do(
        Action.FAIL,
        f"unknown availability_status {read.availability_status!r}",
        "unknown_status",
    )


def _on_delivery_failed(
    failed: DeliveryFailed, history: History, policy: Policy
) -> tuple[Decision, ...]:
    if history.active is None:
        return _do(Action.NOTHING, "no active onboarding")
    if failed.now - failed.first_failed_at >= policy.callback_retry_window:
        return _do(
            Action.FAIL,
            f"the partner's callback refused the key since "
            f"{failed.first_failed_at:%Y-%m-%d %H:%M} UTC",
            "callback_failed",
        )
    return _do(Action.UNDELIVERED, "the partner's callback did not take the key; retrying")


def _on_tick(tick: Tick, history: History, policy: Policy) -> tuple[Decision, ...]:
    active = history.active
    if active is None:
        return _do(Action.NOTHING, "no active onboarding")
    match active.waiting_for:
        case Waiting.PERMISSION:
            due = active.retry_at is None or tick.now >= active.retry_at
            decisions = [Decision(Action.WAKE, "ask for the key again")] if due else []
            since = active.since or tick.now
            if tick.now - since >= policy.permission_alert_after:
                decisions.insert(
                    0, Decision(Action.ALERT, "still no client permission", "permission_pending")
                )
            return tuple(decisions) or _do(Action.NOTHING, "next key attempt not due yet")
        case Waiting.DELIVERY:
            if active.retry_at is None or tick.now >= active.retry_at:
                return _do(Action.WAKE, "retry delivering the key")
            return _do(Action.NOTHING, "next delivery attempt not due yet")
    if active.deadline_at is not None and tick.now >= active.deadline_at:
        return (
            Decision(Action.WAKE, "past its set-up deadline"),
            Decision(Action.ALERT, "still setting_up past its deadline", "setup_deadline_exceeded"),
        )
    return _do(Action.NOTHING, "within its deadline")


def _start(history: History, *, why: str) -> tuple[Decision, ...]:
    if history.active is not None:
        return _do(Action.NOTHING, f"{why}: already being onboarded")
    if history.finished in _LEFT_ALONE:
        return _do(Action.NOTHING, f"{why}: onboarding {history.finished} before; left alone")
    return _do(Action.OPEN, why)


def _wake(active: ActiveRun, why: str) -> tuple[Decision, ...]:
    if active.waiting_for is Waiting.DELIVERY:
        return _do(Action.NOTHING, f"{why}: key delivery is retried on its own schedule")
    return _do(Action.WAKE, why)


def _settled_without_run(
    history: History, created_at: datetime | None, *, why: str
) -> tuple[Decision, ...]:
    """A settled channel nobody is onboarding: key it only if it is ours and never finished."""
    if history.finished is not None:
        return _do(Action.NOTHING, f"{why}: onboarding {history.finished} before; left alone")
    if history.installed_at is None or created_at is None or created_at <= history.installed_at:
        return _do(Action.NOTHING, f"{why}: not created after this installation; never keyed")
    return _do(Action.OPEN_NOW, f"{why}: created after this installation")
