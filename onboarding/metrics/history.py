"""What the history says, as Prometheus metrics computed at each scrape (a custom Collector).

===============================================  =======  ========================================
metric                                           type     labels
===============================================  =======  ========================================
``onboarding_runs``                              gauge    ``state`` (every run state, 0 included)
``onboarding_oldest_waiting_age_seconds``        gauge    (age of the oldest active run; 0: none)
``onboarding_completions_total``                 counter
``onboarding_failures_total``                    counter  ``reason`` (:data:`FAILURE_KINDS`)
``onboarding_signup_to_ready_seconds``           histo.   (run start to the channel found ready)
``onboarding_inbox_events``                      gauge    ``outcome`` (every inbox outcome)
``onboarding_inbox_unhandled``                   gauge    (accepted or failed: the replay's backlog)
``onboarding_alerts_open``                       gauge    ``kind``, ``severity``
===============================================  =======  ========================================

The counters count the history's rows, so they only go up while the history is kept (a new history
starts them again, which Prometheus reads as a counter reset). A failure's reason is the kind of
the last alert its run raised, else ``setup_deadline_exceeded`` for a timed-out run, else
``other``: a bounded set, never the free-text reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import Engine
from sqlmodel import col, func, select

from onboarding.alerts import AlertKind
from onboarding.store import (
    ACTIVE_STATES,
    Alert,
    EventOutcome,
    InboundEvent,
    OnboardingRun,
    RunState,
    session_scope,
)
from onboarding.store.types import utcnow

__all__ = ["FAILURE_KINDS", "SIGNUP_TO_READY_BUCKETS", "HistoryCollector"]

FAILED_STATES = (RunState.FAILED, RunState.TIMED_OUT)
FAILURE_KINDS: tuple[str, ...] = (*(str(kind) for kind in AlertKind), "other")
"""Every value the ``reason`` label of ``onboarding_failures_total`` can take."""
SIGNUP_TO_READY_BUCKETS: tuple[float, ...] = (
    5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14_400, 28_800, 86_400, 172_800,
)  # fmt: skip
_REACHED_READY = (RunState.READY, RunState.UNDELIVERED, RunState.COMPLETED)
_UNHANDLED = (EventOutcome.ACCEPTED, EventOutcome.FAILED)


class HistoryCollector(Collector):
    """Reads the history on each scrape; one short session, a handful of aggregate queries."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def describe(self) -> list[Metric]:
        """Nothing up front: registering must not query the database."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The metrics of the table above, as the history holds them now."""
        now = utcnow()
        with session_scope(self._engine) as session:
            by_state = dict(
                session.exec(
                    select(OnboardingRun.state, func.count()).group_by(OnboardingRun.state)
                ).all()
            )
            oldest = session.exec(
                select(func.min(OnboardingRun.started_at)).where(
                    col(OnboardingRun.state).in_(ACTIVE_STATES)
                )
            ).one()
            failed = session.exec(
                select(OnboardingRun.id, OnboardingRun.state).where(
                    col(OnboardingRun.state).in_(FAILED_STATES)
                )
            ).all()
            alerts = session.exec(
                select(Alert.run_id, Alert.kind)
                .join(OnboardingRun, col(Alert.run_id) == col(OnboardingRun.id))
                .where(col(OnboardingRun.state).in_(FAILED_STATES))
                .order_by(col(Alert.last_raised_at), col(Alert.id))
            ).all()
            ready = session.exec(
                select(OnboardingRun.started_at, OnboardingRun.settled_at).where(
                    col(OnboardingRun.state).in_(_REACHED_READY),
                    col(OnboardingRun.settled_at).is_not(None),
                )
            ).all()
            inbox = dict(
                session.exec(
                    select(InboundEvent.outcome, func.count()).group_by(InboundEvent.outcome)
                ).all()
            )
            open_alerts = session.exec(
                select(Alert.kind, Alert.severity, func.count())
                .where(col(Alert.resolved_at).is_(None))
                .group_by(Alert.kind, Alert.severity)
            ).all()
        yield from _runs(by_state, oldest, now)
        yield from _outcomes(by_state, failed, alerts)
        yield _histogram(ready)
        yield from _inbox(inbox)
        yield _alerts(open_alerts)


def _runs(by_state: dict[str, int], oldest: datetime | None, now: datetime) -> Iterator[Metric]:
    runs = GaugeMetricFamily("onboarding_runs", "Onboarding runs by state.", labels=["state"])
    for state in RunState:
        runs.add_metric([str(state)], by_state.get(state, 0))
    yield runs
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    yield GaugeMetricFamily(
        "onboarding_oldest_waiting_age_seconds",
        "Seconds since the oldest active (not yet finished) onboarding started; 0 when none.",
        value=age,
    )


def failure_kind(state: str, alert_kind: str | None) -> str:
    """The bounded ``reason`` label of one failed run (see the module docstring)."""
    if alert_kind in FAILURE_KINDS:
        return str(alert_kind)
    if state == RunState.TIMED_OUT:
        return str(AlertKind.SETUP_DEADLINE_EXCEEDED)
    return "other"


def _outcomes(
    by_state: dict[str, int], failed: list[tuple[int | None, str]], alerts: list[tuple[int, str]]
) -> Iterator[Metric]:
    yield CounterMetricFamily(
        "onboarding_completions",
        "Onboardings completed (the partner holds the channel's key).",
        value=by_state.get(RunState.COMPLETED, 0),
    )
    last_kind = {run_id: kind for run_id, kind in alerts}  # ordered: the last one wins
    reasons = Counter(failure_kind(state, last_kind.get(run_id or -1)) for run_id, state in failed)
    failures = CounterMetricFamily(
        "onboarding_failures",
        "Onboardings failed or timed out, by reason (an alert kind, or other).",
        labels=["reason"],
    )
    for kind in FAILURE_KINDS:
        failures.add_metric([kind], reasons.get(kind, 0))
    yield failures


def _histogram(ready: list[tuple[datetime, datetime | None]]) -> Metric:
    durations = [
        max(0.0, (settled - started).total_seconds()) for started, settled in ready if settled
    ]
    buckets: list[tuple[str, float]] = [
        (floatToGoString(bound), sum(1 for d in durations if d <= bound))
        for bound in SIGNUP_TO_READY_BUCKETS
    ]
    buckets.append(("+Inf", len(durations)))
    return HistogramMetricFamily(
        "onboarding_signup_to_ready_seconds",
        "Seconds from an onboarding's start (signup or first sighting) to its channel ready.",
        buckets=buckets,
        sum_value=sum(durations),
    )


def _inbox(inbox: dict[str, int]) -> Iterator[Metric]:
    events = GaugeMetricFamily(
        "onboarding_inbox_events",
        "Partner webhook events in the inbox, by outcome.",
        labels=["outcome"],
    )
    for outcome in EventOutcome:
        events.add_metric([str(outcome)], inbox.get(outcome, 0))
    yield events
    yield GaugeMetricFamily(
        "onboarding_inbox_unhandled",
        "Inbox events not handled yet (accepted or failed): the replay's backlog.",
        value=sum(inbox.get(outcome, 0) for outcome in _UNHANDLED),
    )


def _alerts(open_alerts: list[tuple[str, str, int]]) -> Metric:
    gauge = GaugeMetricFamily(
        "onboarding_alerts_open", "Open (unresolved) alerts by kind.", labels=["kind", "severity"]
    )
    for kind, severity, count in open_alerts:
        if kind in FAILURE_KINDS:  # a bounded label set, whatever a row holds
            gauge.add_metric([kind, severity], count)
    return gauge
