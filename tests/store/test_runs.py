"""Onboarding runs: one active run per channel (race-safe), updates, queries, steps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from onboarding.store import (
    ACTIVE_STATES,
    OnboardingRun,
    RunState,
    active_runs_of,
    attach_flow_run,
    find_runs,
    get_active_run,
    get_run,
    mark_run_waiting,
    record_step,
    runs,
    runs_past_deadline,
    session_scope,
    settle_run,
    start_runs,
    step_done,
    update_run,
)
from tests.fixtures.database import T0, start_test_run
from tests.store.racing import race


def test_start_creates_a_pending_run_with_deadline(session: Session) -> None:
    """A channel without an active run gets a new pending run whose deadline follows its start."""
    run, created = start_test_run(
        session, now=T0, client_name="Acme", phone_number="+4915100000000"
    )
    session.commit()
    assert created
    stored = get_run(session, run_id=run.id)  # type: ignore[arg-type]
    assert stored is not None
    assert stored.state == RunState.PENDING
    assert stored.started_at == T0
    assert stored.deadline_at == T0 + timedelta(hours=1)
    assert stored.started_at.tzinfo is not None


def test_start_twice_returns_the_active_run(session: Session) -> None:
    """Starting a run for a channel that has an active one returns that run, not a second one."""
    first, created_first = start_test_run(session)
    second, created_second = start_test_run(session)
    assert (created_first, created_second) == (True, False)
    assert second.id == first.id


def test_new_run_allowed_after_the_previous_settles(session: Session) -> None:
    """Once a channel's run has ended, a new run for the channel can start."""
    first, _ = start_test_run(session)
    settle_run(session, run_id=first.id, state=RunState.FAILED, availability_status="error")  # type: ignore[arg-type]
    second, created = start_test_run(session)
    assert created
    assert second.id != first.id


def test_database_refuses_a_second_active_run(session: Session) -> None:
    """The database itself rejects two active runs of one channel, whatever the code does."""
    common = {
        "partner_id": "p-1",
        "client_id": "cl-1",
        "channel_id": "ch-1",
        "trigger": "manual",
        "deadline_at": T0,
    }
    session.add(OnboardingRun(**common, state="waiting"))  # type: ignore[arg-type]
    session.flush()
    session.add(OnboardingRun(**common, state="ready"))  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        session.flush()


@pytest.mark.parametrize("rounds", [20])
def test_concurrent_starts_leave_exactly_one_active_run(engine: Engine, rounds: int) -> None:
    """Two writers racing to start a run for the same channel end with exactly one active run."""
    for round_no in range(rounds):
        channel_id = f"race-{round_no}"

        def start(channel_id: str = channel_id) -> tuple[int | None, bool]:
            with session_scope(engine) as session:  # its own session and connection
                run, created = start_test_run(session, channel_id=channel_id)
                return run.id, created

        results = race(start)
        assert sorted(created for _, created in results) == [False, True]
        assert len({run_id for run_id, _ in results}) == 1
        with Session(engine) as session:
            active = session.exec(
                select(func.count()).where(
                    OnboardingRun.channel_id == channel_id,
                    col(OnboardingRun.state).in_(ACTIVE_STATES),
                )
            ).one()
        assert active == 1


def test_waiting_and_settle_stamp_the_right_times(session: Session) -> None:
    """Waiting records the status; ready stamps settled_at; completing stamps finished_at once."""
    run, _ = start_test_run(session)
    run_id = run.id
    assert run_id is not None
    mark_run_waiting(session, run_id=run_id, availability_status="setting_up")
    assert get_run(session, run_id=run_id).state == RunState.WAITING  # type: ignore[union-attr]
    ready = settle_run(
        session, run_id=run_id, state=RunState.READY, availability_status="ready", now=T0
    )
    assert (ready.settled_at, ready.finished_at) == (T0, None)
    later = T0 + timedelta(minutes=5)
    done = settle_run(
        session, run_id=run_id, state=RunState.COMPLETED, availability_status="ready", now=later
    )
    assert (done.settled_at, done.finished_at) == (T0, later)
    assert get_active_run(session, channel_id="ch-1") is None


def test_attaching_a_flow_run_is_a_compare_and_set(session: Session) -> None:
    """A flow run is recorded only over the one it replaces; one that lost is reported lost, but
    the run's own flow run is never reported lost, even once it has finished the onboarding
    (two wakers create the same flow run through its idempotency key: the second to record it
    must not cancel the run that did the work)."""
    run, _ = start_test_run(session)
    run_id = run.id
    assert run_id is not None

    def attach(flow_run_id: str, replacing: str | None = None) -> bool:
        return attach_flow_run(
            session, run_id=run_id, flow_run_id=flow_run_id, replacing=replacing, due_now=False
        )

    assert attach("fr-1")
    assert attach("fr-1"), "the same flow run, recorded again by a second waker"
    assert not attach("fr-2"), "another flow run over one it does not replace"
    assert attach("fr-2", replacing="fr-1")
    settle_run(session, run_id=run_id, state=RunState.COMPLETED, availability_status="ready")
    assert attach("fr-2"), "the flow run that finished the onboarding is still its own"
    assert not attach("fr-3", replacing="fr-2"), "a finished onboarding takes no new flow run"
    session.expire_all()  # the compare-and-set is an UPDATE statement, not through the ORM
    stored = get_run(session, run_id=run_id)
    assert stored is not None
    assert (stored.state, stored.flow_run_id) == (RunState.COMPLETED, "fr-2")


def test_update_run_rejects_unknown_fields(session: Session) -> None:
    """update_run refuses a field the table does not have, so typos cannot pass silently."""
    run, _ = start_test_run(session)
    with pytest.raises(TypeError, match="colour"):
        update_run(session, run_id=run.id, colour="blue")  # type: ignore[arg-type]


def test_find_runs_filters_by_state_client_and_channel(session: Session) -> None:
    """find_runs returns only the runs matching every filter given."""
    a, _ = start_test_run(session, channel_id="ch-a")
    start_test_run(session, channel_id="ch-b")
    settle_run(session, run_id=a.id, state=RunState.COMPLETED, availability_status="ready")  # type: ignore[arg-type]
    assert [r.channel_id for r in find_runs(session, state="completed")] == ["ch-a"]
    assert {r.channel_id for r in find_runs(session, client_id="cl-1")} == {"ch-a", "ch-b"}
    assert [r.channel_id for r in find_runs(session, state=["pending"], channel_id="ch-b")] == [
        "ch-b"
    ]
    assert find_runs(session, client_id="nobody") == []


def test_runs_past_deadline_lists_only_overdue_active_runs(session: Session) -> None:
    """Only active runs whose deadline has passed are overdue."""
    start_test_run(session, channel_id="late", now=T0)
    start_test_run(session, channel_id="fresh", now=T0 + timedelta(hours=2))
    ended, _ = start_test_run(session, channel_id="ended", now=T0)
    settle_run(session, run_id=ended.id, state=RunState.FAILED, availability_status="error")  # type: ignore[arg-type]
    overdue = runs_past_deadline(session, now=T0 + timedelta(hours=1, minutes=1))
    assert [run.channel_id for run in overdue] == ["late"]


def test_steps_are_recorded_once_and_seen_as_done(session: Session) -> None:
    """A recorded step is reported done; recording it again updates the one row."""
    run, _ = start_test_run(session)
    run_id = run.id
    assert run_id is not None
    assert step_done(session, run_id=run_id, step="create_api_key") is None
    record_step(session, run_id=run_id, step="create_api_key", outcome="failed")
    assert step_done(session, run_id=run_id, step="create_api_key") is None
    record_step(session, run_id=run_id, step="create_api_key", detail={"key_id": "k-1"})
    done = step_done(session, run_id=run_id, step="create_api_key")
    assert done is not None
    assert done.detail == {"key_id": "k-1"}
    assert done.done_at.tzinfo is not None


def test_lost_race_rolls_back_only_the_savepoint(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Losing the insert race returns the winner and keeps the caller's earlier uncommitted work."""
    winner, _ = start_test_run(session, channel_id="ch-won")
    earlier, _ = start_test_run(session, channel_id="ch-earlier")  # same transaction, not committed
    real_lookup = runs.get_active_run
    calls = 0

    def blind_first_lookup(session: Session, *, channel_id: str) -> OnboardingRun | None:
        # The only way to lose the race deterministically: not see the winner before inserting.
        nonlocal calls
        calls += 1
        return None if calls == 1 else real_lookup(session, channel_id=channel_id)

    monkeypatch.setattr(runs, "get_active_run", blind_first_lookup)
    run, created = start_test_run(session, channel_id="ch-won")
    assert (run.id, created) == (winner.id, False)
    assert calls == 2  # the insert failed and the winner was read back
    session.commit()
    with Session(session.get_bind()) as fresh:  # what the database holds, not the identity map
        assert fresh.get(OnboardingRun, earlier.id) is not None
        assert len(find_runs(fresh, channel_id="ch-won")) == 1


def test_rolling_back_the_session_undoes_a_started_run(engine: Engine) -> None:
    """A run started inside a session that rolls back is gone: its SAVEPOINT did not commit it."""
    with Session(engine) as session:
        start_test_run(session, channel_id="ch-undone")
        session.rollback()
    with Session(engine) as fresh:
        assert get_active_run(fresh, channel_id="ch-undone") is None


def test_start_runs_starts_the_missing_and_returns_the_active(session: Session) -> None:
    """Bulk start: channels with an active run get theirs, the others one new pending run each."""
    existing, _ = start_test_run(session, "ch-old")
    started = start_runs(
        session,
        partner_id="p-1",
        channels=[("ch-old", "cl-1"), ("ch-a", "cl-2"), ("ch-b", "cl-3")],
        trigger="schedule",
        deadline_seconds=60,
        now=T0,
    )
    session.commit()
    assert started["ch-old"].id == existing.id
    assert {started["ch-a"].client_id, started["ch-b"].client_id} == {"cl-2", "cl-3"}
    assert all(started[c].id is not None for c in ("ch-a", "ch-b"))
    assert started["ch-a"].deadline_at == T0 + timedelta(seconds=60)
    assert len(active_runs_of(session, channel_ids=["ch-old", "ch-a", "ch-b"])) == 3


def test_start_runs_falls_back_one_by_one_when_another_writer_won(engine: Engine) -> None:
    """A run started concurrently for one of the channels: no duplicate, no error, its run."""
    with session_scope(engine) as rival:
        winner, _ = start_test_run(rival, "ch-raced")
    with session_scope(engine) as session:
        # Simulate the race: the batch did not see the rival's run when it looked.
        original = runs.active_runs_of
        try:
            runs.active_runs_of = lambda session, channel_ids: {}
            started = start_runs(
                session,
                partner_id="p-1",
                channels=[("ch-raced", "cl-1"), ("ch-free", "cl-1")],
                trigger="schedule",
                deadline_seconds=60,
            )
        finally:
            runs.active_runs_of = original
        assert started["ch-raced"].id == winner.id
        assert started["ch-free"].id is not None
    with session_scope(engine) as session:
        assert len(find_runs(session, channel_id="ch-raced")) == 1


def test_latest_finished_state_is_the_newest_final_run(session: Session) -> None:
    """A channel's latest finished run decides; active runs and other channels do not count."""
    first, _ = start_test_run(session, "ch-f", now=T0)
    settle_run(session, run_id=first.id, state=RunState.FAILED, availability_status="error")  # type: ignore[arg-type]
    second, _ = start_test_run(session, "ch-f", now=T0 + timedelta(hours=1))
    settle_run(session, run_id=second.id, state=RunState.CANCELLED, availability_status=None)  # type: ignore[arg-type]
    start_test_run(session, "ch-active", now=T0)
    session.commit()
    states = runs.latest_finished_states(session, channel_ids=["ch-f", "ch-active", "ch-none"])
    assert states == {"ch-f": RunState.CANCELLED}


def test_adopted_channels_are_finished_and_never_active(session: Session) -> None:
    """Adopting records a finished ``adopted`` run per channel; a later start opens a new one."""
    runs.adopt_channels(session, partner_id="p-1", channels=[("ch-a", "cl-1"), ("ch-b", "cl-2")])
    session.commit()
    assert runs.latest_finished_states(session, channel_ids=["ch-a", "ch-b"]) == {
        "ch-a": RunState.ADOPTED,
        "ch-b": RunState.ADOPTED,
    }
    assert get_active_run(session, channel_id="ch-a") is None


def test_installation_keeps_its_id_and_first_sweep(session: Session) -> None:
    """The installation row is made once; its first sweep is kept, its latest one moves."""
    from onboarding.store import get_installation, note_sweep

    first = get_installation(session)
    note_sweep(session, at=T0)
    note_sweep(session, at=T0 + timedelta(minutes=1))
    session.commit()
    again = get_installation(session)
    assert again.id == first.id
    assert again.first_sweep_at == T0
    assert again.last_sweep_at == T0 + timedelta(minutes=1)
