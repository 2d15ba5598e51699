"""Read-only queries over the history that build a :class:`~onboarding.report.model.Report`.

Only SELECTs over the SQLModel tables; the arithmetic (funnel, percentiles, grouping) is done in
Python on the few columns fetched, which keeps the SQL identical on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, or_, select

from onboarding.report.model import (
    AlertKindCount,
    Alerts,
    DayLatency,
    FailureCount,
    Funnel,
    Report,
    Waiting,
)
from onboarding.report.stats import percentile
from onboarding.store import (
    ACTIVE_STATES,
    Alert,
    InboundEvent,
    OnboardingRun,
    RunState,
)
from onboarding.text import mask_phone_in

__all__ = ["build_report", "clean_reason"]

SIGNUP_EVENT = "channel_created"
FAILED_STATES = (RunState.FAILED, RunState.TIMED_OUT, RunState.CANCELLED)
_MAX_REASON = 120


def clean_reason(reason: str | None, *, phone_number: str | None = None) -> str:
    """A failure reason fit for grouping and showing: first line, the run's number masked, clipped.

    Only the run's own phone number is masked (wherever it appears, however spaced): other
    digits, such as a channel id's, are left as they are.
    """
    lines = (reason or "").strip().splitlines()
    text = mask_phone_in(lines[0], phone_number) if lines else "no reason recorded"
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def build_report(
    session: Session, *, window: timedelta, now: datetime | None = None, top: int = 10
) -> Report:
    """The report over the ``window`` ending ``now``, with the ``top`` slowest waiting channels."""
    until = now or datetime.now(UTC)
    since = until - window
    days = _days(since, until)
    ready = _ready_times(session, since, until, days)
    return Report(
        generated_at=datetime.now(UTC),
        since=since,
        until=until,
        funnel=_funnel(session, since, until),
        time_to_ready=[_latency(day, values) for day, values in sorted(ready.items())],
        time_to_ready_overall=_latency(days[0], [v for vs in ready.values() for v in vs]),
        waiting=_waiting(session, until, top),
        waiting_total=_waiting_total(session),
        alerts=_alerts(session, since, until),
    )


def _days(since: datetime, until: datetime) -> list[date]:
    first, last = since.astimezone(UTC).date(), until.astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _funnel(session: Session, since: datetime, until: datetime) -> Funnel:
    runs = session.exec(
        select(
            OnboardingRun.channel_id,
            OnboardingRun.state,
            OnboardingRun.availability_status,
            OnboardingRun.settled_at,
            OnboardingRun.failure_reason,
            OnboardingRun.phone_number,
        ).where(OnboardingRun.started_at >= since, OnboardingRun.started_at < until)
    ).all()
    signups = session.exec(
        select(InboundEvent.channel_id).where(
            InboundEvent.event_type == SIGNUP_EVENT,
            col(InboundEvent.channel_id).is_not(None),
            InboundEvent.received_at >= since,
            InboundEvent.received_at < until,
        )
    ).all()
    reasons: Counter[tuple[str, str]] = Counter(
        (state, clean_reason(reason, phone_number=phone))
        for _, state, _, _, reason, phone in runs
        if state in FAILED_STATES
    )
    return Funnel(
        signed_up=len({channel for channel, *_ in runs} | {c for c in signups if c}),
        setting_up=len(runs),
        ready=sum(1 for _, _, status, settled, *_ in runs if status == "ready" and settled),
        completed=sum(1 for _, state, *_ in runs if state == RunState.COMPLETED),
        failed=sum(reasons.values()),
        in_progress=sum(1 for _, state, *_ in runs if state in ACTIVE_STATES),
        failures=[
            FailureCount(state=state, reason=reason, count=count)
            for (state, reason), count in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    )


def _ready_times(
    session: Session, since: datetime, until: datetime, days: list[date]
) -> dict[date, list[float]]:
    """Seconds from start to ready of the runs that became ready in the window, by UTC day."""
    rows = session.exec(
        select(OnboardingRun.started_at, OnboardingRun.settled_at).where(
            OnboardingRun.availability_status == "ready",
            col(OnboardingRun.settled_at).is_not(None),
            col(OnboardingRun.settled_at) >= since,
            col(OnboardingRun.settled_at) < until,
        )
    ).all()
    by_day: dict[date, list[float]] = {day: [] for day in days}
    for started, settled in rows:
        by_day.setdefault(settled.astimezone(UTC).date(), []).append(
            max(0.0, (settled - started).total_seconds())
        )
    return by_day


def _latency(day: date, values: list[float]) -> DayLatency:
    return DayLatency(
        day=day,
        count=len(values),
        p50=percentile(values, 50),
        p90=percentile(values, 90),
        p99=percentile(values, 99),
    )


def _waiting_filter() -> Any:
    """Runs still waiting for their channel: pending or waiting (ready ones are finishing)."""
    return col(OnboardingRun.state).in_((RunState.PENDING, RunState.WAITING))


def _waiting(session: Session, now: datetime, top: int) -> list[Waiting]:
    runs = session.exec(
        select(OnboardingRun)
        .where(_waiting_filter())
        .order_by(col(OnboardingRun.started_at), col(OnboardingRun.id))
        .limit(top)
    ).all()
    return [
        Waiting(
            channel_id=run.channel_id,
            client_id=run.client_id,
            client_name=run.client_name,
            state=run.state,
            availability_status=run.availability_status,
            started_at=run.started_at,
            waited_seconds=max(0.0, (now - run.started_at).total_seconds()),
            deadline_at=run.deadline_at,
            overdue=run.deadline_at < now,
        )
        for run in runs
    ]


def _waiting_total(session: Session) -> int:
    return len(session.exec(select(OnboardingRun.id).where(_waiting_filter())).all())


def _alerts(session: Session, since: datetime, until: datetime) -> Alerts:
    rows = session.exec(
        select(Alert.kind, Alert.first_raised_at, Alert.resolved_at).where(
            or_(
                col(Alert.resolved_at).is_(None),
                (Alert.first_raised_at >= since) & (Alert.first_raised_at < until),
                (col(Alert.resolved_at) >= since) & (col(Alert.resolved_at) < until),
            )
        )
    ).all()
    raised: Counter[str] = Counter()
    resolved: Counter[str] = Counter()
    still_open: Counter[str] = Counter()
    for kind, first, done in rows:
        if since <= first < until:
            raised[kind] += 1
        if done is not None and since <= done < until:
            resolved[kind] += 1
        if done is None:
            still_open[kind] += 1
    kinds = sorted(set(raised) | set(resolved) | set(still_open))
    return Alerts(
        raised=sum(raised.values()),
        resolved=sum(resolved.values()),
        open_now=sum(still_open.values()),
        by_kind=[
            AlertKindCount(kind=k, raised=raised[k], resolved=resolved[k], open=still_open[k])
            for k in kinds
        ],
    )
