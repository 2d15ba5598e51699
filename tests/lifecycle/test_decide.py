"""The lifecycle as a table: every history state x every observation kind -> the decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from onboarding.lifecycle import (
    Action,
    ActiveRun,
    DeliveryFailed,
    Event,
    FlowRunGone,
    History,
    KeyRefused,
    Policy,
    Requested,
    RunRead,
    Seen,
    Tick,
    Waiting,
    decide,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
INSTALLED = NOW - timedelta(days=1)
OLD = INSTALLED - timedelta(days=30)  # created before this installation
NEW = INSTALLED + timedelta(hours=1)  # created after it
DEADLINE = NOW + timedelta(hours=1)

HISTORIES = {
    "never-seen": History(installed_at=INSTALLED),
    "before-first-sweep": History(),
    "waiting": History(ActiveRun(1, deadline_at=DEADLINE), installed_at=INSTALLED),
    "overdue": History(
        ActiveRun(1, deadline_at=NOW - timedelta(seconds=1)), installed_at=INSTALLED
    ),
    "permission": History(
        ActiveRun(1, Waiting.PERMISSION, DEADLINE, since=NOW - timedelta(hours=1)),
        installed_at=INSTALLED,
    ),
    "permission-long": History(
        ActiveRun(1, Waiting.PERMISSION, DEADLINE, since=NOW - timedelta(days=2)),
        installed_at=INSTALLED,
    ),
    "undelivered-due": History(
        ActiveRun(1, Waiting.DELIVERY, DEADLINE, since=NOW, retry_at=NOW), installed_at=INSTALLED
    ),
    "undelivered-later": History(
        ActiveRun(1, Waiting.DELIVERY, DEADLINE, since=NOW, retry_at=NOW + timedelta(minutes=5)),
        installed_at=INSTALLED,
    ),
    "completed": History(finished="completed", installed_at=INSTALLED),
    "failed": History(finished="failed", installed_at=INSTALLED),
    "cancelled": History(finished="cancelled", installed_at=INSTALLED),
    "adopted": History(finished="adopted", installed_at=INSTALLED),
}

OBSERVATIONS = {
    "channel_created": Event("channel_created"),
    "channel_submitted": Event("channel_submitted"),
    "channel_ready-new": Event("channel_ready", created_at=NEW),
    "channel_live-old": Event("channel_live", created_at=OLD),
    "channel_running-undated": Event("channel_running"),
    "permission-ready-new": Event(
        "channel_permission_granted", data_status="ready", created_at=NEW
    ),
    "permission-not-ready": Event("channel_permission_granted", data_status="pending"),
    "channel_cancelled": Event("channel_cancelled"),
    "client_terminated": Event("client_terminated"),
    "account_violation": Event("account_violation"),
    "account_restriction": Event("account_restriction"),
    "client_created": Event("client_created"),
    "template_approved": Event("template_approved"),
    "unknown-event": Event("channel_teleported"),
    "sweep-setting_up": Seen("setting_up"),
    "sweep-ready-old": Seen("ready", created_at=OLD),
    "sweep-ready-new": Seen("ready", created_at=NEW),
    "sweep-error": Seen("error"),
    "sweep-no-status": Seen(None),
    "sweep-unknown": Seen("migrating"),
    "signup-ready-new": Seen("ready", created_at=NEW, source="signup"),
    "run-setting_up": RunRead("setting_up", NOW),
    "run-ready": RunRead("ready", NOW),
    "run-error": RunRead("error", NOW),
    "run-unknown": RunRead("migrating", NOW),
    "run-no-status": RunRead(None, NOW),
    "key-refused": KeyRefused(),
    "delivery-failed-recent": DeliveryFailed(NOW - timedelta(minutes=5), NOW),
    "delivery-failed-long": DeliveryFailed(NOW - timedelta(days=2), NOW),
    "tick": Tick(NOW),
    "flow-run-deleted": FlowRunGone(cancelled_by_person=False),
    "flow-run-cancelled": FlowRunGone(cancelled_by_person=True),
    "requested": Requested(),
}

N = "nothing"
ACTIVE_HISTORIES = [
    "waiting",
    "overdue",
    "permission",
    "permission-long",
    "undelivered-due",
    "undelivered-later",
]
FINISHED_HISTORIES = ["completed", "failed", "cancelled", "adopted"]
FRESH_HISTORIES = ["never-seen", "before-first-sweep"]


def expected(history: str, observation: str) -> tuple[str, ...]:
    """The table, row by row: what each observation calls for in each history state."""
    active = history in ACTIVE_HISTORIES
    delivering = history.startswith("undelivered")
    obs = observation
    if obs in ("client_created", "template_approved", "unknown-event"):
        return (N,)
    if obs in ("account_violation", "account_restriction"):
        return ("alert",)
    if obs in ("channel_cancelled", "client_terminated"):
        return ("cancel",) if active else (N,)
    if obs in ("channel_created", "channel_submitted", "sweep-setting_up"):
        if active or history in ("completed", "cancelled", "adopted"):
            return (N,)
        return ("open",)
    if obs.startswith(
        (
            "channel_ready",
            "channel_live",
            "channel_running",
            "sweep-ready",
            "signup-ready",
            "permission-ready",
            "sweep-error",
            "sweep-no-status",
            "sweep-unknown",
            "permission-not-ready",
        )
    ):
        if active:
            if obs.startswith("permission"):
                return ("wake",)
            return (N,) if delivering else ("wake",)
        if obs in ("sweep-error", "sweep-no-status", "sweep-unknown", "permission-not-ready"):
            return (N,)
        if history in FINISHED_HISTORIES:
            return (N,)
        if history == "before-first-sweep":
            return ("adopt",) if obs.startswith("sweep-ready") else (N,)
        return ("open_now",) if obs.endswith("-new") else (N,)
    if obs.startswith("run-"):
        if not active:
            return (N,)
        if obs == "run-setting_up":
            return ("time_out",) if history == "overdue" else ("repark",)
        return ("finish",) if obs == "run-ready" else ("fail",)
    if obs == "key-refused":
        return ("await_permission",) if active else (N,)
    if obs.startswith("delivery-failed"):
        if not active:
            return (N,)
        return ("fail",) if obs.endswith("long") else ("undelivered",)
    if obs == "tick":
        return {
            "overdue": ("wake", "alert"),
            "permission": ("wake",),
            "permission-long": ("alert", "wake"),
            "undelivered-due": ("wake",),
        }.get(history, (N,))
    if obs.startswith("flow-run"):
        if not active:
            return (N,)
        return ("cancel",) if obs.endswith("cancelled") else ("reopen",)
    if obs == "requested":  # onboarding onboard, the requested event: never re-key
        return (N,) if active or history in ("completed", "adopted") else ("open",)
    raise AssertionError(f"no row for {obs}")


@pytest.mark.parametrize("observation", list(OBSERVATIONS))
@pytest.mark.parametrize("history", list(HISTORIES))
def test_decision_table(history: str, observation: str) -> None:
    """Each history state and observation kind leads to the decision the table gives."""
    decisions = decide(OBSERVATIONS[observation], HISTORIES[history], Policy())
    assert tuple(d.action.value for d in decisions) == expected(history, observation)
    assert all(d.reason for d in decisions)


@pytest.mark.parametrize(
    ("observation", "alert"),
    [
        ("run-error", "channel_error"),
        ("run-unknown", "unknown_status"),
        ("run-no-status", "unknown_status"),
        ("delivery-failed-long", "callback_failed"),
        ("account_violation", "account_problem"),
    ],
)
def test_failures_name_their_alert(observation: str, alert: str) -> None:
    """A failure or an alert decision carries the alert kind a person will receive."""
    [decision] = decide(OBSERVATIONS[observation], HISTORIES["waiting"])
    assert decision.alert == alert


def test_permission_alert_waits_for_its_delay() -> None:
    """``permission_pending`` is raised only once the wait is longer than the policy allows."""
    history = HISTORIES["permission"]
    assert Action.ALERT not in {d.action for d in decide(Tick(NOW), history, Policy())}
    short = Policy(permission_alert_after=timedelta(minutes=30))
    alerts = [d.alert for d in decide(Tick(NOW), history, short) if d.action is Action.ALERT]
    assert alerts == ["permission_pending"]


@pytest.mark.parametrize("history", ["completed", "adopted"])
def test_a_request_for_an_onboarded_channel_points_to_rekey(history: str) -> None:
    """Asked for by name, an onboarded channel gets no key: the reason names `onboarding rekey`."""
    [decision] = decide(Requested(), HISTORIES[history])
    assert decision.action is Action.NOTHING
    assert "onboarding rekey" in decision.reason


@pytest.mark.parametrize(
    ("finished", "by_its_last_flow_run", "action"),
    [
        ("cancelled", False, Action.OPEN),  # `onboarding onboard` after a cancel starts over
        ("cancelled", True, Action.NOTHING),  # the run parked when the cancel came: never
        ("failed", True, Action.OPEN),  # Retry on a failed flow run in the UI: starts over
    ],
)
def test_a_cancelled_onboarding_restarts_on_request_but_not_by_its_own_flow_run(
    finished: str, by_its_last_flow_run: bool, action: Action
) -> None:
    """A flow run left parked when its onboarding was cancelled, due later, starts nothing."""
    request = Requested(by_its_last_flow_run=by_its_last_flow_run)
    [decision] = decide(request, History(finished=finished, installed_at=INSTALLED))
    assert decision.action is action
