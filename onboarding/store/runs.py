"""Onboarding runs and their follow-up steps: start-or-get (race-safe), update, query.

The database, not this code, guarantees one active run per channel (a partial unique index);
:func:`start_or_get_run` turns losing that race into "the run someone else just started".
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from onboarding.store.models import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    OnboardingRun,
    OnboardingStep,
    RunState,
)
from onboarding.store.race import insert_or_winner
from onboarding.store.types import utcnow

__all__ = [
    "active_runs",
    "active_runs_of",
    "adopt_channels",
    "attach_flow_run",
    "channels_with_runs",
    "count_runs_by_state",
    "find_runs",
    "finished_runs_of_flow_runs",
    "get_active_run",
    "get_run",
    "get_step",
    "latest_completed_runs",
    "latest_finished_states",
    "lock_run",
    "mark_run_waiting",
    "note_wake_requests",
    "record_step",
    "runs_past_deadline",
    "settle_run",
    "start_or_get_run",
    "start_runs",
    "step_done",
    "update_run",
]

_CHUNK = 1000  # channel ids per IN (...) list
_UPDATABLE = frozenset(OnboardingRun.model_fields) - {"id", "channel_id", "started_at"}


def get_run(session: Session, *, run_id: int) -> OnboardingRun | None:
    """The run with id ``run_id``, or ``None``."""
    return session.get(OnboardingRun, run_id)


def lock_run(session: Session, *, run_id: int) -> OnboardingRun | None:
    """The run with id ``run_id``, read afresh and locked until the transaction ends.

    For a check-then-write (is it still active?): on PostgreSQL the row stays locked
    (``FOR UPDATE``) so an ending committed meanwhile cannot be written over; SQLite's
    transactions here take the write lock at their start (``BEGIN IMMEDIATE``) anyway.
    """
    return session.get(OnboardingRun, run_id, with_for_update=True, populate_existing=True)


def _require_run(session: Session, run_id: int) -> OnboardingRun:
    run = session.get(OnboardingRun, run_id)
    if run is None:
        raise LookupError(f"no onboarding run with id {run_id}")
    return run


def get_active_run(session: Session, *, channel_id: str) -> OnboardingRun | None:
    """The channel's pending/waiting/ready run, or ``None``."""
    statement = select(OnboardingRun).where(
        OnboardingRun.channel_id == channel_id, col(OnboardingRun.state).in_(ACTIVE_STATES)
    )
    return session.exec(statement).first()


def _new_run(
    *,
    partner_id: str,
    channel_id: str,
    client_id: str,
    trigger: str,
    deadline_seconds: float,
    now: datetime,
    state: str = RunState.PENDING,
    **extra: Any,
) -> OnboardingRun:
    """A new run (``pending`` unless said otherwise), not yet added to a session."""
    return OnboardingRun(
        partner_id=partner_id,
        client_id=client_id,
        channel_id=channel_id,
        trigger=trigger,
        state=state,
        started_at=now,
        updated_at=now,
        deadline_at=now + timedelta(seconds=deadline_seconds),
        **extra,
    )


def start_or_get_run(
    session: Session,
    *,
    partner_id: str,
    channel_id: str,
    client_id: str,
    trigger: str,
    deadline_seconds: float,
    flow_run_id: str | None = None,
    client_name: str | None = None,
    phone_number: str | None = None,
    now: datetime | None = None,
) -> tuple[OnboardingRun, bool]:
    """The channel's active run, starting a new ``pending`` one if there is none.

    Returns ``(run, created)``. Safe against concurrent callers: the insert runs in a SAVEPOINT,
    and a unique-index violation means another writer won, whose run is returned instead.
    """
    existing = get_active_run(session, channel_id=channel_id)
    if existing is not None:
        return existing, False
    now = now or utcnow()
    run = _new_run(
        partner_id=partner_id,
        channel_id=channel_id,
        client_id=client_id,
        trigger=trigger,
        deadline_seconds=deadline_seconds,
        now=now,
        client_name=client_name,
        phone_number=phone_number,
        flow_run_id=flow_run_id,
    )
    return insert_or_winner(session, run, lambda: get_active_run(session, channel_id=channel_id))


def start_runs(
    session: Session,
    *,
    partner_id: str,
    channels: Sequence[tuple[str, str]],
    trigger: str,
    deadline_seconds: float,
    now: datetime | None = None,
) -> dict[str, OnboardingRun]:
    """:func:`start_or_get_run` for many ``(channel_id, client_id)`` at once.

    Returns each channel's active run. Three statements per thousand channels (read the active
    runs, insert the missing ones in one batch) instead of a few per channel; if a concurrent
    writer started one of them meanwhile, the batch is rolled back to its SAVEPOINT and the
    channels are taken one by one.
    """
    same: dict[str, Any] = {
        "partner_id": partner_id,
        "trigger": trigger,
        "deadline_seconds": deadline_seconds,
        "now": now or utcnow(),
    }
    runs = active_runs_of(session, channel_ids=[channel_id for channel_id, _ in channels])
    new = {
        channel_id: _new_run(channel_id=channel_id, client_id=client_id, **same)
        for channel_id, client_id in channels
        if channel_id not in runs
    }
    try:
        with session.begin_nested():
            session.add_all(new.values())
    except IntegrityError:
        for channel_id, client_id in channels:
            runs[channel_id], _ = start_or_get_run(
                session, channel_id=channel_id, client_id=client_id, **same
            )
        return runs
    return runs | new


def active_runs_of(session: Session, *, channel_ids: Sequence[str]) -> dict[str, OnboardingRun]:
    """The active run of each of ``channel_ids`` that has one."""
    found: dict[str, OnboardingRun] = {}
    for start in range(0, len(channel_ids), _CHUNK):
        statement = select(OnboardingRun).where(
            col(OnboardingRun.channel_id).in_(channel_ids[start : start + _CHUNK]),
            col(OnboardingRun.state).in_(ACTIVE_STATES),
        )
        found.update((run.channel_id, run) for run in session.exec(statement))
    return found


def latest_completed_runs(
    session: Session, *, channel_ids: Sequence[str]
) -> dict[str, OnboardingRun]:
    """For each channel onboarded before, its most recent completed run."""
    found: dict[str, OnboardingRun] = {}
    for start in range(0, len(channel_ids), _CHUNK):
        statement = (
            select(OnboardingRun)
            .where(
                col(OnboardingRun.channel_id).in_(channel_ids[start : start + _CHUNK]),
                OnboardingRun.state == RunState.COMPLETED,
            )
            .order_by(col(OnboardingRun.started_at), col(OnboardingRun.id))
        )
        found.update((run.channel_id, run) for run in session.exec(statement))  # latest wins
    return found


def latest_finished_states(session: Session, *, channel_ids: Sequence[str]) -> dict[str, str]:
    """For each channel with a finished run, the final state of its latest one."""
    found: dict[str, str] = {}
    for start in range(0, len(channel_ids), _CHUNK):
        statement = (
            select(OnboardingRun.channel_id, OnboardingRun.state)
            .where(
                col(OnboardingRun.channel_id).in_(channel_ids[start : start + _CHUNK]),
                col(OnboardingRun.state).in_(TERMINAL_STATES),
            )
            .order_by(col(OnboardingRun.started_at), col(OnboardingRun.id))
        )
        found.update((cid, state) for cid, state in session.exec(statement))  # latest wins
    return found


def adopt_channels(
    session: Session,
    *,
    partner_id: str,
    channels: Sequence[tuple[str, str]],
    now: datetime | None = None,
) -> list[OnboardingRun]:
    """Record ``(channel_id, client_id)`` channels as adopted: finished runs that never key."""
    now = now or utcnow()
    runs = [
        _new_run(
            partner_id=partner_id,
            channel_id=channel_id,
            client_id=client_id,
            trigger="adopted",
            deadline_seconds=0,
            now=now,
            state=RunState.ADOPTED,
            stage="ready before this installation",
            finished_at=now,
            settled_at=now,
        )
        for channel_id, client_id in channels
    ]
    session.add_all(runs)
    session.flush()
    return runs


def update_run(session: Session, *, run_id: int, **fields: Any) -> OnboardingRun:
    """Set ``fields`` on the run (and ``updated_at``); unknown field names raise ``TypeError``."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise TypeError(f"cannot update onboarding_run field(s): {', '.join(sorted(unknown))}")
    run = _require_run(session, run_id)
    for name, value in fields.items():
        setattr(run, name, value)
    run.updated_at = utcnow()
    session.add(run)
    session.flush()
    return run


def attach_flow_run(
    session: Session,
    *,
    run_id: int,
    flow_run_id: str,
    replacing: str | None,
    due_now: bool,
) -> bool:
    """Record ``flow_run_id`` as the active run's flow run, unless the run moved on meanwhile.

    A compare-and-set in one UPDATE: it applies while the run is still active and its flow run
    is still ``replacing`` (None for a new run), or already ``flow_run_id`` (another waker created
    the same one through its idempotency key, or the flow run claimed the onboarding itself). A
    ``pending`` run becomes ``pending`` (due now) or ``waiting``; any later state is left as the
    flow run wrote it.

    True when ``flow_run_id`` is the run's flow run afterwards, even if the onboarding has
    already ended with it (another waker recorded the same flow run, which then finished the
    onboarding): such a flow run must never be cancelled. False when the onboarding ended
    without it or has another flow run.
    """
    owner = col(OnboardingRun.flow_run_id)
    pending = col(OnboardingRun.state) == RunState.PENDING
    state = RunState.PENDING if due_now else RunState.WAITING
    stage = "queued" if due_now else "waiting for the channel"
    applied = session.execute(
        update(OnboardingRun)
        .where(
            col(OnboardingRun.id) == run_id,
            col(OnboardingRun.state).in_(ACTIVE_STATES),
            or_(owner.is_(None), owner.in_([flow_run_id, replacing or flow_run_id])),
        )
        .values(
            flow_run_id=flow_run_id,
            state=case((pending, state), else_=col(OnboardingRun.state)),
            stage=case((pending, stage), else_=col(OnboardingRun.stage)),
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if applied.rowcount:
        return True
    current = session.execute(
        select(OnboardingRun.flow_run_id).where(col(OnboardingRun.id) == run_id)
    )
    return current.scalar_one_or_none() == flow_run_id


def note_wake_requests(session: Session, *, run_ids: Collection[int]) -> dict[int, str | None]:
    """Count one more wake request on each of these runs; their flow runs as of now.

    The flow runs are read after the write, in the same transaction: against a run handing
    over to a new flow run at the same moment, either this read sees the new flow run or the
    hand-over sees this request (whichever takes the row first).
    """
    if not run_ids:
        return {}
    ids = list(run_ids)
    session.execute(
        update(OnboardingRun)
        .where(col(OnboardingRun.id).in_(ids))
        .values(wake_requests=OnboardingRun.wake_requests + 1)
    )
    rows = session.execute(
        select(OnboardingRun.id, OnboardingRun.flow_run_id).where(col(OnboardingRun.id).in_(ids))
    )
    return {run_id: flow_run_id for run_id, flow_run_id in rows}


def mark_run_waiting(
    session: Session,
    *,
    run_id: int,
    availability_status: str | None = None,
    channel_status: str | None = None,
    stage: str | None = "waiting",
) -> OnboardingRun:
    """The run now waits for the channel (state ``waiting``) and saw these statuses."""
    fields: dict[str, Any] = {"state": RunState.WAITING, "stage": stage}
    if availability_status is not None:
        fields["availability_status"] = availability_status
    if channel_status is not None:
        fields["channel_status"] = channel_status
    return update_run(session, run_id=run_id, **fields)


def settle_run(
    session: Session,
    *,
    run_id: int,
    state: str,
    availability_status: str | None,
    failure_reason: str | None = None,
    channel_status: str | None = None,
    stage: str | None = None,
    now: datetime | None = None,
) -> OnboardingRun:
    """Move the run to ``state``: ``ready`` stamps ``settled_at``; a final state ``finished_at``.

    The first settle wins the ``settled_at`` stamp, so re-running a step does not rewrite it.
    """
    now = now or utcnow()
    run = _require_run(session, run_id)
    fields: dict[str, Any] = {"state": state, "availability_status": availability_status}
    if failure_reason is not None:
        fields["failure_reason"] = failure_reason
    if channel_status is not None:
        fields["channel_status"] = channel_status
    if stage is not None:
        fields["stage"] = stage
    if state in (RunState.READY, *TERMINAL_STATES) and run.settled_at is None:
        fields["settled_at"] = now
    if state in TERMINAL_STATES and run.finished_at is None:
        fields["finished_at"] = now
    return update_run(session, run_id=run_id, **fields)


def find_runs(
    session: Session,
    *,
    state: str | Collection[str] | None = None,
    client_id: str | None = None,
    channel_id: str | None = None,
    partner_id: str | None = None,
    limit: int = 100,
) -> list[OnboardingRun]:
    """Runs matching every given filter, newest first."""
    statement = select(OnboardingRun)
    if isinstance(state, str):
        statement = statement.where(OnboardingRun.state == state)
    elif state is not None:
        statement = statement.where(col(OnboardingRun.state).in_(list(state)))
    if client_id is not None:
        statement = statement.where(OnboardingRun.client_id == client_id)
    if channel_id is not None:
        statement = statement.where(OnboardingRun.channel_id == channel_id)
    if partner_id is not None:
        statement = statement.where(OnboardingRun.partner_id == partner_id)
    statement = statement.order_by(
        col(OnboardingRun.started_at).desc(), col(OnboardingRun.id).desc()
    ).limit(limit)
    return list(session.exec(statement))


def runs_past_deadline(session: Session, *, now: datetime) -> list[OnboardingRun]:
    """Active runs whose deadline is before ``now``, oldest deadline first."""
    statement = (
        select(OnboardingRun)
        .where(col(OnboardingRun.state).in_(ACTIVE_STATES), OnboardingRun.deadline_at < now)
        .order_by(col(OnboardingRun.deadline_at))
    )
    return list(session.exec(statement))


def get_step(session: Session, *, run_id: int, step: str) -> OnboardingStep | None:
    """The record of ``step`` in the run, whatever its outcome, or ``None``."""
    statement = select(OnboardingStep).where(
        OnboardingStep.run_id == run_id, OnboardingStep.step == step
    )
    return session.exec(statement).first()


def step_done(session: Session, *, run_id: int, step: str) -> OnboardingStep | None:
    """The recorded step if it was done (or skipped) in this run, else ``None``.

    Any other outcome (``started``, ``failed``, ``refused``) means it is still to do.
    """
    statement = select(OnboardingStep).where(
        OnboardingStep.run_id == run_id,
        OnboardingStep.step == step,
        col(OnboardingStep.outcome).in_(("done", "skipped")),
    )
    return session.exec(statement).first()


def record_step(
    session: Session,
    *,
    run_id: int,
    step: str,
    outcome: str = "done",
    detail: dict[str, Any] | None = None,
) -> OnboardingStep:
    """Record ``step`` of the run with ``outcome``; recording it again overwrites the record."""
    lookup = select(OnboardingStep).where(
        OnboardingStep.run_id == run_id, OnboardingStep.step == step
    )
    existing = session.exec(lookup).first()
    if existing is None:
        row = OnboardingStep(run_id=run_id, step=step, outcome=outcome, detail=detail)
        try:
            with session.begin_nested():
                session.add(row)
            return row
        except IntegrityError:
            existing = session.exec(lookup).first()
            if existing is None:  # not a concurrent duplicate: e.g. no such run
                raise
    existing.outcome = outcome
    existing.detail = detail
    existing.done_at = utcnow()
    session.add(existing)
    session.flush()
    return existing


def channels_with_runs(
    session: Session, *, channel_ids: Collection[str], state: str | Collection[str]
) -> set[str]:
    """Which of ``channel_ids`` have at least one run in ``state`` (one query per 1,000 ids)."""
    states = [state] if isinstance(state, str) else list(state)
    ids = list(channel_ids)
    found: set[str] = set()
    for start in range(0, len(ids), 1000):
        statement = select(OnboardingRun.channel_id).where(
            col(OnboardingRun.channel_id).in_(ids[start : start + 1000]),
            col(OnboardingRun.state).in_(states),
        )
        found.update(session.exec(statement))
    return found


def active_runs(session: Session, *, partner_id: str | None = None) -> list[OnboardingRun]:
    """Every active (pending, waiting, ready) run, oldest first."""
    statement = select(OnboardingRun).where(col(OnboardingRun.state).in_(ACTIVE_STATES))
    if partner_id is not None:
        statement = statement.where(OnboardingRun.partner_id == partner_id)
    return list(session.exec(statement.order_by(col(OnboardingRun.started_at))))


def finished_runs_of_flow_runs(
    session: Session, *, flow_run_ids: Collection[str]
) -> list[OnboardingRun]:
    """The finished (terminal) history runs recorded against any of ``flow_run_ids``."""
    if not flow_run_ids:
        return []
    statement = select(OnboardingRun).where(
        col(OnboardingRun.flow_run_id).in_(list(flow_run_ids)),
        col(OnboardingRun.state).in_(TERMINAL_STATES),
    )
    return list(session.exec(statement))


def count_runs_by_state(session: Session, *, partner_id: str | None = None) -> dict[str, int]:
    """How many runs are in each state."""
    statement = select(OnboardingRun.state, func.count()).group_by(OnboardingRun.state)
    if partner_id is not None:
        statement = statement.where(OnboardingRun.partner_id == partner_id)
    return {state: count for state, count in session.exec(statement)}
