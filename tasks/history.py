"""Tasks that read and write the onboarding history (the store does the SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel
from sqlmodel import Session

from onboarding.hub import Channel
from onboarding.procedure import Verdict, classify
from onboarding.store import (
    OnboardingRun,
    RunState,
    active_runs_of,
    channel_timeline,
    find_runs,
    get_active_run,
    get_run,
    latest_completed_runs,
    record_observation,
    session_scope,
    start_or_get_run,
    start_runs,
    update_run,
)
from tasks.flow_runs import owner_state
from tasks.resources import history_engine, partner_id, settings

__all__ = [
    "Claim",
    "ClaimKind",
    "claim_channel",
    "finish_run",
    "hand_over",
    "load_timeline",
    "open_history_run",
    "record_status",
]


class ClaimKind(StrEnum):
    """Whether this flow run may onboard the channel."""

    OWN = "own"  # this flow run owns the channel's active history run
    ALREADY_DONE = "already_done"  # the channel was onboarded before: nothing to do
    OWNED_ELSEWHERE = "owned_elsewhere"  # another live flow run is onboarding it


class Claim(BaseModel):
    """The outcome of claiming a channel, with the history run it refers to."""

    kind: ClaimKind
    run_id: int
    channel_id: str
    client_id: str | None
    partner_id: str
    owner_flow_run_id: str | None
    started_at: datetime
    deadline_at: datetime
    attempts: int

    @classmethod
    def of(cls, kind: ClaimKind, run: OnboardingRun) -> Claim:
        """A claim describing ``run``."""
        assert run.id is not None
        return cls(
            kind=kind,
            run_id=run.id,
            channel_id=run.channel_id,
            client_id=run.client_id,
            partner_id=run.partner_id,
            owner_flow_run_id=run.flow_run_id,
            started_at=run.started_at,
            deadline_at=run.deadline_at,
            attempts=run.attempts,
        )

    def past_deadline(self, now: datetime | None = None) -> bool:
        """True once the set-up deadline (counted from the first start) has passed."""
        return (now or datetime.now(UTC)) >= self.deadline_at


async def _owner_alive(run: OnboardingRun) -> bool:
    """Whether the flow run that owns ``run`` can still finish it.

    A parked owner is alive. A running one is alive while it keeps touching the history run:
    a process killed mid-wait leaves its flow run ``Running`` forever, so after
    ``ONBOARDING_OWNER_LEASE`` seconds without progress another run may take over.
    """
    if not run.flow_run_id:
        return False
    state = await owner_state(run.flow_run_id)
    if state != "running":
        return state == "waiting"
    lease = timedelta(seconds=settings().owner_lease)
    return datetime.now(UTC) - run.updated_at <= lease


def open_history_run(
    session: Session,
    *,
    channel_id: str,
    client_id: str,
    trigger: str,
    flow_run_id: str | None = None,
) -> tuple[OnboardingRun, bool]:
    """The channel's active history run, started if there is none: ``(run, created)``.

    A channel onboarded before gets its completed run back instead (``created`` False).
    """
    if get_active_run(session, channel_id=channel_id) is None:
        done = find_runs(session, channel_id=channel_id, state=RunState.COMPLETED, limit=1)
        if done:
            return done[0], False
    return start_or_get_run(
        session,
        partner_id=partner_id(),
        channel_id=channel_id,
        client_id=client_id,
        trigger=trigger,
        deadline_seconds=settings().setup_deadline,
        flow_run_id=flow_run_id,
    )


def open_history_runs(
    session: Session, *, channels: Sequence[tuple[str, str]], trigger: str
) -> list[OnboardingRun]:
    """:func:`open_history_run` for many ``(channel_id, client_id)``, in a few statements."""
    ids = [channel_id for channel_id, _ in channels]
    active = active_runs_of(session, channel_ids=ids)
    done = latest_completed_runs(session, channel_ids=[cid for cid in ids if cid not in active])
    known = active.keys() | done.keys()
    active |= start_runs(
        session,
        partner_id=partner_id(),
        channels=[(cid, client) for cid, client in channels if cid not in known],
        trigger=trigger,
        deadline_seconds=settings().setup_deadline,
    )
    return [active.get(cid) or done[cid] for cid in ids]


@task(name="claim-channel", cache_policy=NO_CACHE)
async def claim_channel(
    *, channel_id: str, client_id: str, trigger: str, flow_run_id: str | None
) -> Claim:
    """Start or resume the channel's onboarding in the history; at most one owner at a time.

    A channel onboarded before needs nothing more. An active run owned by another flow run is
    left to it while that flow run can still finish; otherwise this flow run takes it over and
    carries on from the steps already recorded.
    """
    with session_scope(history_engine()) as session:
        run, created = open_history_run(
            session,
            channel_id=channel_id,
            client_id=client_id,
            trigger=trigger,
            flow_run_id=flow_run_id,
        )
        if run.state == RunState.COMPLETED:
            return Claim.of(ClaimKind.ALREADY_DONE, run)
        if created or run.flow_run_id in (None, flow_run_id):
            # Touching the run (updated_at) tells the watcher this owner is alive.
            run = update_run(session, run_id=run.id, flow_run_id=flow_run_id or run.flow_run_id)
            return Claim.of(ClaimKind.OWN, run)
    if await _owner_alive(run):
        return Claim.of(ClaimKind.OWNED_ELSEWHERE, run)
    with session_scope(history_engine()) as session:
        run = update_run(session, run_id=run.id, flow_run_id=flow_run_id, attempts=run.attempts + 1)
        return Claim.of(ClaimKind.OWN, run)


@task(name="record-status", cache_policy=NO_CACHE)
async def record_status(claim: Claim, channel: Channel, *, source: str = "poll") -> Verdict:
    """Record the channel as seen now (a row only per transition); return the verdict."""
    verdict = classify(channel.availability_status)
    state = {Verdict.WAIT: RunState.WAITING, Verdict.READY: RunState.READY}.get(verdict)
    with session_scope(history_engine()) as session:
        record_observation(
            session,
            channel_id=channel.id,
            availability_status=channel.availability_status,
            status=channel.status,
            source=source,
            run_id=claim.run_id,
        )
        changes: dict[str, object] = {
            "availability_status": channel.availability_status,
            "channel_status": channel.status,
            "client_name": channel.client_name,
            "phone_number": channel.phone_number,
        }
        if state is not None:
            changes["state"] = state
            changes["stage"] = f"channel {channel.availability_status}"
        if verdict is Verdict.READY:
            changes["settled_at"] = datetime.now(UTC)
        update_run(session, run_id=claim.run_id, **changes)
    return verdict


@task(name="finish-run", cache_policy=NO_CACHE)
async def finish_run(claim: Claim, *, state: RunState, reason: str | None = None) -> None:
    """Close the history run as completed, failed or timed out."""
    now = datetime.now(UTC)
    with session_scope(history_engine()) as session:
        run = get_run(session, run_id=claim.run_id)
        update_run(
            session,
            run_id=claim.run_id,
            state=state,
            failure_reason=reason,
            finished_at=now,
            settled_at=run.settled_at or now,
            stage=str(state),
        )


def hand_over(claim: Claim, *, flow_run_id: str) -> None:
    """Make ``flow_run_id`` (a fresh parked run) the flow run carrying the onboarding on."""
    with session_scope(history_engine()) as session:
        update_run(
            session,
            run_id=claim.run_id,
            flow_run_id=flow_run_id,
            state=RunState.WAITING,
            stage="waiting for the channel",
        )


def load_timeline(channel_id: str) -> list[tuple[datetime, str | None, str | None]]:
    """The channel's observed transitions, oldest first: (when, availability_status, status)."""
    with session_scope(history_engine()) as session:
        return [
            (obs.observed_at, obs.availability_status, obs.status)
            for obs in channel_timeline(session, channel_id=channel_id)
        ]


def latest_runs(channel_id: str) -> list[OnboardingRun]:
    """The channel's runs, newest first (for reports and the CLI)."""
    with session_scope(history_engine()) as session:
        return list(find_runs(session, channel_id=channel_id))
