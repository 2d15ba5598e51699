"""The report's summary: one pydantic model, the same for the terminal, JSON, HTML and Prefect.

Durations are seconds (floats); timestamps are aware UTC datetimes (ISO-8601 in JSON); days are
UTC calendar days. Nothing here holds a phone number or a secret.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

__all__ = ["AlertKindCount", "Alerts", "DayLatency", "FailureCount", "Funnel", "Report", "Waiting"]


class FailureCount(BaseModel):
    """Runs that ended in ``state`` (failed, timed_out, cancelled) with one ``reason``."""

    state: str
    reason: str
    count: int


class Funnel(BaseModel):
    """How far the onboardings started in the window got."""

    signed_up: int = Field(
        description="Channels signed up: channel_created events or runs started."
    )
    setting_up: int = Field(description="Onboarding runs started (the channel was setting up).")
    ready: int = Field(description="Runs whose channel reached availability_status ready.")
    completed: int = Field(description="Runs completed (follow-up steps done).")
    failed: int = Field(description="Runs that ended failed, timed_out or cancelled.")
    in_progress: int = Field(description="Runs still pending, waiting or ready.")
    failures: list[FailureCount] = Field(default_factory=list, description="Failed runs by reason.")


class DayLatency(BaseModel):
    """Time to ready (settled_at - started_at) of the runs that became ready on ``day`` (UTC)."""

    day: date
    count: int
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


class Waiting(BaseModel):
    """A channel still waiting for its onboarding to settle (one active run)."""

    channel_id: str
    client_id: str
    client_name: str | None
    state: str
    availability_status: str | None
    started_at: datetime
    waited_seconds: float
    deadline_at: datetime
    overdue: bool


class AlertKindCount(BaseModel):
    """Alerts of one kind: raised and resolved in the window, and open now."""

    kind: str
    raised: int
    resolved: int
    open: int


class Alerts(BaseModel):
    """Alerts raised and resolved in the window, and how many are open now."""

    raised: int
    resolved: int
    open_now: int
    by_kind: list[AlertKindCount] = Field(default_factory=list)


class Report(BaseModel):
    """The onboarding report over ``[since, until)``."""

    generated_at: datetime
    since: datetime
    until: datetime
    funnel: Funnel
    time_to_ready: list[DayLatency] = Field(description="One entry per UTC day of the window.")
    time_to_ready_overall: DayLatency = Field(description="The whole window (day = first day).")
    waiting: list[Waiting] = Field(description="The slowest channels still waiting, slowest first.")
    waiting_total: int = Field(description="How many channels are waiting in all.")
    alerts: Alerts
