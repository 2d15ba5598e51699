"""What an onboarding run writes down: its claim, each reading, waiting, and how it ended.

The flow calls these plain functions (no task runs: each is one short transaction, and Prefect's
retries would add nothing); the lifecycle decides, this module only records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel
from sqlmodel import Session

from onboarding.hub import Channel
from onboarding.lifecycle import (
    Action,
    ActiveRun,
    Decision,
    DeliveryFailed,
    History,
    KeyRefused,
    Policy,
    Requested,
    RunRead,
    Waiting,
    decide,
)
from onboarding.runtime import history_engine, partner_id, settings
from onboarding.store import (
    OnboardingRun,
    RunState,
    channel_timeline,
    find_runs,
    get_active_run,
    get_installation,
    lock_run,
    record_observation,
    session_scope,
    settle_run,
    start_or_get_run,
    update_run,
)

__all__ = [
    "Claim",
    "ClaimKind",
    "OnboardingEnded",
    "active_view",
    "claim_channel",
    "delivery_step",
    "history_key",
    "load_timeline",
    "next_step",
    "note_waiting",
    "policy",
    "wake_requests",
]


def policy() -> Policy:
    """The lifecycle's time limits, from the settings."""
    config = settings()
    return Policy(
        permission_alert_after=timedelta(seconds=config.permission_alert_after),
        callback_retry_window=timedelta(seconds=config.callback_retry_window),
    )


def history_key(installation_id: str, run_id: int) -> str:
    """What ties a flow run to one history run of this installation (its tag and key)."""
    return f"{installation_id[:8]}-{run_id}"


def active_view(run: OnboardingRun) -> ActiveRun:
    """The lifecycle's view of an active history run."""
    assert run.id is not None
    waiting_for = {
        RunState.PERMISSION: Waiting.PERMISSION,
        RunState.UNDELIVERED: Waiting.DELIVERY,
    }.get(RunState(run.state), Waiting.CHANNEL)
    return ActiveRun(run.id, waiting_for, run.deadline_at, run.waiting_since, run.retry_at)


class ClaimKind(StrEnum):
    """Whether this flow run may onboard the channel."""

    OWN = "own"  # this flow run owns the channel's active history run
    ALREADY_DONE = "already_done"  # the channel was onboarded before: nothing to do
    OWNED_ELSEWHERE = "owned_elsewhere"  # another live flow run is onboarding it


# The claim's fields that the history run holds under the same names.
_COPIED_FROM_RUN = {
    "channel_id",
    "client_id",
    "partner_id",
    "started_at",
    "deadline_at",
    "attempts",
}


class Claim(BaseModel):
    """The outcome of claiming a channel, with the history run it refers to."""

    kind: ClaimKind
    run_id: int
    history_key: str
    channel_id: str
    client_id: str | None
    partner_id: str
    owner_flow_run_id: str | None
    started_at: datetime
    deadline_at: datetime
    attempts: int

    @classmethod
    def of(
        cls, kind: ClaimKind, run: OnboardingRun, installation_id: str, *, note: str = ""
    ) -> Claim:
        """A claim describing ``run``."""
        assert run.id is not None
        return cls(
            kind=kind,
            note=note,
            run_id=run.id,
            history_key=history_key(installation_id, run.id),
            owner_flow_run_id=run.flow_run_id,
            **run.model_dump(include=_COPIED_FROM_RUN),
        )

    note: str = ""

    @property
    def describe(self) -> str:
        """Why this flow run has nothing to do (for its final state)."""
        if self.kind is ClaimKind.ALREADY_DONE:
            return f"channel {self.channel_id}: {self.note}"
        return (
            f"channel {self.channel_id} is being onboarded by run #{self.run_id} "
            f"(flow run {self.owner_flow_run_id}); nothing to do"
        )


OwnerState = Callable[[str], Awaitable[str]]
"""Reads a flow run's state for a claim: ``"gone"``, ``"waiting"`` or ``"running"``."""


async def _owner_alive(run: OnboardingRun, owner_state: OwnerState) -> bool:
    """Whether the flow run that owns ``run`` can still finish it.

    A parked owner is alive. A running one is alive while it keeps touching the history run: a
    process killed mid-run leaves its flow run ``Running``, so after ``ONBOARDING_OWNER_LEASE``
    seconds without progress another run may take over.
    """
    if not run.flow_run_id:
        return False
    state = await owner_state(run.flow_run_id)
    if state != "running":
        return state == "waiting"
    lease = timedelta(seconds=settings().owner_lease)
    return datetime.now(UTC) - run.updated_at <= lease


async def claim_channel(
    *,
    channel_id: str,
    client_id: str,
    trigger: str,
    flow_run_id: str | None,
    owner_state: OwnerState,
) -> Claim:
    """Start or resume the channel's onboarding in the history; at most one owner at a time.

    Whether a channel with no active run may start is the lifecycle's call (``Requested``): a
    channel onboarded or adopted before needs nothing more. An active run owned by another flow
    run is left to it while that flow run can still finish; otherwise this flow run takes it
    over and carries on from the steps already recorded.
    """
    with session_scope(history_engine()) as session:
        installation = get_installation(session).id
        if get_active_run(session, channel_id=channel_id) is None:
            # With none active, the newest run is the latest finished one (every state is one
            # or the other).
            newest = next(iter(find_runs(session, channel_id=channel_id, limit=1)), None)
            request = Requested(
                by_its_last_flow_run=newest is not None
                and flow_run_id is not None
                and newest.flow_run_id == flow_run_id
            )
            history = History(finished=newest.state if newest else None)
            [decision] = decide(request, history)
            if decision.action is Action.NOTHING:
                assert newest is not None  # nothing to do only because of a finished run
                note = decision.reason
                return Claim.of(ClaimKind.ALREADY_DONE, newest, installation, note=note)
        run, created = start_or_get_run(
            session,
            partner_id=partner_id(),
            channel_id=channel_id,
            client_id=client_id,
            trigger=trigger,
            deadline_seconds=settings().setup_deadline,
            flow_run_id=flow_run_id,
        )
        if created or run.flow_run_id in (None, flow_run_id):
            # Touching the run (updated_at) tells the watcher this owner is alive.
            run = update_run(session, run_id=run.id, flow_run_id=flow_run_id or run.flow_run_id)
            return Claim.of(ClaimKind.OWN, run, installation)
    if await _owner_alive(run, owner_state):
        return Claim.of(ClaimKind.OWNED_ELSEWHERE, run, installation)
    with session_scope(history_engine()) as session:
        run = update_run(session, run_id=run.id, flow_run_id=flow_run_id, attempts=run.attempts + 1)
        return Claim.of(ClaimKind.OWN, run, installation)


def next_step(claim: Claim, channel: Channel) -> Decision:
    """Record the run's reading of its channel and ask the lifecycle what comes next.

    Raises :class:`OnboardingEnded`, writing nothing, when the onboarding has ended meanwhile.
    """
    now = datetime.now(UTC)
    with session_scope(history_engine()) as session:
        _still_active(session, claim)
        record_observation(
            session,
            channel_id=channel.id,
            availability_status=channel.availability_status,
            status=channel.status,
            source="poll",
            run_id=claim.run_id,
        )
        run = update_run(
            session,
            run_id=claim.run_id,
            availability_status=channel.availability_status,
            channel_status=channel.status,
            client_name=channel.client_name,
            phone_number=channel.phone_number,
        )
        history = History(active=active_view(run))
    [decision] = decide(RunRead(channel.availability_status, now), history, policy())
    if decision.action is Action.FINISH and run.state in (RunState.PENDING, RunState.WAITING):
        # A run waiting for permission or delivery keeps that state (and since when) until
        # the key is delivered: the retry window counts from its first failure.
        with session_scope(history_engine()) as session:
            _still_active(session, claim)
            settle_run(
                session,
                run_id=claim.run_id,
                state=RunState.READY,
                availability_status=channel.availability_status,
                stage="channel ready",
            )
    return decision


def _retry_delay(waited: timedelta) -> timedelta:
    """Backoff between key or delivery attempts: half the time waited so far, 1 min to 1 h.

    Never more than a tenth of the shorter retry window, so short windows still get retries.
    """
    config = settings()
    cap = min(3600.0, config.callback_retry_window / 10, config.permission_alert_after / 10)
    return timedelta(seconds=min(cap, max(60.0, waited.total_seconds() / 2)))


def wake_requests(claim: Claim) -> int:
    """How many times wakers have asked for this onboarding to run so far."""
    with session_scope(history_engine()) as session:
        run = session.get(OnboardingRun, claim.run_id)
        return run.wake_requests if run else 0


class OnboardingEnded(Exception):
    """The onboarding was ended elsewhere (a cancel, the deadline) while this flow run read it."""


def _still_active(session: Session, claim: Claim) -> OnboardingRun:
    """The claimed run, locked for this transaction; :class:`OnboardingEnded` if it has ended.

    Every write a flow run makes between its claim and its outcome checks this first: writing
    ``waiting`` or ``ready`` over a run ended meanwhile would reopen it.
    """
    run = lock_run(session, run_id=claim.run_id)
    assert run is not None
    if not run.is_active:
        raise OnboardingEnded(f"onboarding of {claim.channel_id} ended {run.state} meanwhile")
    return run


def note_waiting(claim: Claim, decision: Decision) -> datetime | None:
    """Record what the run waits for now (channel, permission, delivery); returns the retry time.

    The first refusal or failed delivery starts the wait (``waiting_since``); each later one only
    moves the next attempt further out. Raises :class:`OnboardingEnded`, writing nothing, when
    the onboarding has ended since the flow run claimed it: waiting again would reopen it.
    """
    now = datetime.now(UTC)
    state, stage = {
        Action.AWAIT_PERMISSION: (RunState.PERMISSION, "waiting for permission"),
        Action.UNDELIVERED: (RunState.UNDELIVERED, "key not delivered; retrying"),
    }.get(decision.action, (RunState.WAITING, "waiting for the channel"))
    with session_scope(history_engine()) as session:
        run = _still_active(session, claim)
        since = run.waiting_since if run.state == state and run.waiting_since else now
        retry_at = None if state == RunState.WAITING else now + _retry_delay(now - since)
        update_run(
            session,
            run_id=claim.run_id,
            state=state,
            stage=stage,
            waiting_since=since,
            retry_at=retry_at,
            failure_reason=decision.reason if state != RunState.WAITING else None,
        )
    return retry_at


def delivery_step(claim: Claim, *, refused: bool) -> Decision:
    """What the lifecycle says after the key was refused, or created but not delivered."""
    now = datetime.now(UTC)
    with session_scope(history_engine()) as session:
        run = session.get(OnboardingRun, claim.run_id)
        assert run is not None
        history = History(active=active_view(run))
        failing_since = run.waiting_since if run.state == RunState.UNDELIVERED else None
    observation = KeyRefused() if refused else DeliveryFailed(failing_since or now, now)
    [decision] = decide(observation, history, policy())
    return decision


def load_timeline(channel_id: str) -> list[tuple[datetime, str | None, str | None]]:
    """The channel's observed transitions, oldest first: (when, availability_status, status)."""
    with session_scope(history_engine()) as session:
        return [
            (obs.observed_at, obs.availability_status, obs.status)
            for obs in channel_timeline(session, channel_id=channel_id)
        ]
