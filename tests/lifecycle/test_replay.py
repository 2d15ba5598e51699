"""Level-triggered: replayed and duplicated observations leave the history where it was."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from onboarding import lifecycle as lc

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STATUSES = st.sampled_from(["setting_up", "ready", "error", "migrating", None])
CREATED = st.sampled_from([None, NOW - timedelta(days=60), NOW - timedelta(minutes=1)])
OBSERVATIONS = st.one_of(
    st.builds(
        lc.Event,
        name=st.sampled_from(
            [
                "channel_created",
                "channel_submitted",
                "channel_ready",
                "channel_running",
                "channel_live",
                "channel_permission_granted",
                "channel_cancelled",
                "account_violation",
                "client_created",
                "template_rejected",
                "channel_xyz",
            ]
        ),
        data_status=st.sampled_from(["ready", None]),
        created_at=CREATED,
    ),
    st.builds(
        lc.Seen,
        availability_status=STATUSES,
        created_at=CREATED,
        source=st.sampled_from(["sweep", "signup"]),
    ),
    st.builds(lc.RunRead, availability_status=STATUSES, now=st.just(NOW)),
    st.just(lc.KeyRefused()),
    st.builds(
        lc.DeliveryFailed,
        first_failed_at=st.sampled_from([NOW, NOW - timedelta(days=3)]),
        now=st.just(NOW),
    ),
    st.just(lc.Tick(NOW)),
    st.builds(lc.FlowRunGone, cancelled_by_person=st.booleans()),
)
SEQUENCES = st.lists(OBSERVATIONS, max_size=12)
INSTALLED_AT = st.sampled_from([None, NOW - timedelta(days=1)])


def apply(history: lc.History, observation: lc.Observation) -> tuple[lc.History, frozenset[str]]:
    """What carrying out the decisions does to the history (an in-memory stand-in for the store).

    Returns the new history and the alerts raised (alerts are de-duplicated per kind).
    """
    alerts: set[str] = set()
    for decision in lc.decide(observation, history):
        active = history.active
        match decision.action:
            case lc.Action.OPEN | lc.Action.OPEN_NOW:
                history = replace(history, active=lc.ActiveRun(1, deadline_at=NOW + timedelta(1)))
            case lc.Action.FINISH:
                history = replace(history, active=None, finished="completed")
            case lc.Action.FAIL | lc.Action.TIME_OUT:
                history = replace(history, active=None, finished="failed")
            case lc.Action.CANCEL:
                history = replace(history, active=None, finished="cancelled")
            case lc.Action.ADOPT:
                history = replace(history, finished="adopted")
            case lc.Action.AWAIT_PERMISSION if active:
                history = replace(
                    history, active=replace(active, waiting_for=lc.Waiting.PERMISSION)
                )
            case lc.Action.UNDELIVERED if active:
                delivery = replace(active, waiting_for=lc.Waiting.DELIVERY, retry_at=NOW)
                history = replace(history, active=delivery)
            case lc.Action.ALERT:
                alerts.add(decision.alert or "")
    return history, frozenset(alerts)


def replay(
    history: lc.History, observations: list[lc.Observation]
) -> tuple[lc.History, frozenset[str]]:
    """Apply every observation in order; collect every alert raised."""
    raised: set[str] = set()
    for observation in observations:
        history, alerts = apply(history, observation)
        raised |= alerts
    return history, frozenset(raised)


@given(SEQUENCES, INSTALLED_AT)
def test_every_observation_delivered_twice_is_delivered_once(
    observations: list[lc.Observation], installed: datetime | None
) -> None:
    """Each signal replayed right after itself (a duplicated delivery) changes nothing more."""
    doubled = [observation for observation in observations for _ in range(2)]
    once = replay(lc.History(installed_at=installed), observations)
    twice = replay(lc.History(installed_at=installed), doubled)
    assert twice == once


@given(SEQUENCES, INSTALLED_AT)
def test_replaying_the_whole_sequence_again_converges(
    observations: list[lc.Observation], installed: datetime | None
) -> None:
    """Replaying every signal once more after a full replay leaves the history as it was."""
    first, _ = replay(lc.History(installed_at=installed), observations * 2)
    second, _ = replay(first, observations)
    assert second == first
