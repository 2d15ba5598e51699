"""The history's tables (SQLModel): the single source of truth Alembic migrations follow.

Every timestamp is a :class:`~onboarding.store.types.UtcDateTime` (aware UTC on every backend).
States and outcomes are plain strings in the database; the :class:`~enum.StrEnum` classes below
name the allowed values for code.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from onboarding.store.types import UtcDateTime, utcnow

__all__ = [
    "ACTIVE_STATES",
    "TERMINAL_STATES",
    "Alert",
    "AlertDelivery",
    "ChannelSnapshot",
    "EventOutcome",
    "InboundEvent",
    "Installation",
    "ObservationSource",
    "OnboardingRun",
    "OnboardingStep",
    "RunState",
    "StatusObservation",
]


class RunState(StrEnum):
    """Where one onboarding run is."""

    PENDING = "pending"
    WAITING = "waiting"  # for the channel to leave setting_up
    PERMISSION = "permission"  # for the client to let the partner create the channel's key
    READY = "ready"
    UNDELIVERED = "undelivered"  # ready, but the partner's callback has not taken a key yet
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    ADOPTED = "adopted"  # ready before this installation's first sweep: recorded, never keyed


ACTIVE_STATES: tuple[str, ...] = (
    RunState.PENDING,
    RunState.WAITING,
    RunState.PERMISSION,
    RunState.READY,
    RunState.UNDELIVERED,
)
TERMINAL_STATES: tuple[str, ...] = (
    RunState.COMPLETED,
    RunState.FAILED,
    RunState.TIMED_OUT,
    RunState.CANCELLED,
    RunState.ADOPTED,
)


class ObservationSource(StrEnum):
    """Who saw a channel's status."""

    POLL = "poll"
    SWEEP = "sweep"
    WEBHOOK = "webhook"


class EventOutcome(StrEnum):
    """What became of an inbound partner webhook."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IGNORED = "ignored"
    HANDLED = "handled"
    FAILED = "failed"
    DEAD = "dead"


def _ts(*, nullable: bool = False, index: bool = False) -> Any:
    """A timezone-aware UTC timestamp column."""
    return Field(default=None, sa_type=UtcDateTime, nullable=nullable, index=index)


def _now_ts() -> Any:
    """A non-null UTC timestamp column defaulting to now."""
    return Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)


# Named constraints keep future SQLite batch migrations (which rebuild tables) deterministic.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The same predicate (one literal) for both dialects, so the index is "one active run per channel".
_ACTIVE_RUN = text("state IN ('pending', 'waiting', 'permission', 'ready', 'undelivered')")
_OPEN_ALERT = text("resolved_at IS NULL")


class OnboardingRun(SQLModel, table=True):
    """One onboarding of one channel; at most one active (pending/waiting/ready) per channel."""

    __tablename__ = "onboarding_run"
    __table_args__ = (
        Index(
            "uq_onboarding_run_active_channel",
            "channel_id",
            unique=True,
            postgresql_where=_ACTIVE_RUN,
            sqlite_where=_ACTIVE_RUN,
        ),
        Index("ix_onboarding_run_channel_started", "channel_id", "started_at"),
        Index("ix_onboarding_run_client_started", "client_id", "started_at"),
        Index("ix_onboarding_run_state_deadline", "state", "deadline_at"),
        Index("ix_onboarding_run_partner_state", "partner_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    partner_id: str = Field(max_length=64)
    client_id: str = Field(max_length=64)
    channel_id: str = Field(max_length=64)
    client_name: str | None = Field(default=None, max_length=255)
    phone_number: str | None = Field(default=None, max_length=32)
    trigger: str = Field(max_length=16)
    flow_run_id: str | None = Field(default=None, max_length=64, index=True)
    state: str = Field(default=RunState.PENDING, max_length=16)
    availability_status: str | None = Field(default=None, max_length=32)
    channel_status: str | None = Field(default=None, max_length=64)
    stage: str | None = Field(default=None, max_length=64)
    started_at: datetime = _now_ts()
    settled_at: datetime | None = _ts(nullable=True)
    finished_at: datetime | None = _ts(nullable=True)
    deadline_at: datetime = _ts()
    failure_reason: str | None = Field(default=None, sa_type=Text)
    attempts: int = Field(default=1)
    updated_at: datetime = _now_ts()
    waiting_since: datetime | None = _ts(nullable=True)  # began waiting for permission/delivery
    retry_at: datetime | None = _ts(nullable=True)  # next delivery attempt (undelivered)
    # How many times a webhook, sweep or signup asked for this onboarding to run; a run that
    # counted fewer before it read its channel runs once more instead of parking.
    wake_requests: int = Field(default=0, sa_column_kwargs={"server_default": "0"})

    @property
    def is_active(self) -> bool:
        """True while the run is not finished."""
        return self.state in ACTIVE_STATES


class Installation(SQLModel, table=True):
    """This installation of the product (one row): its id and its first sweep.

    The id makes flow-run idempotency keys unique to this history, so a reset history never
    attaches a new onboarding to an old flow run. Channels ready before the first sweep are
    adopted, never keyed.
    """

    __tablename__ = "installation"

    id: str = Field(primary_key=True, max_length=36)
    created_at: datetime = _now_ts()
    first_sweep_at: datetime | None = _ts(nullable=True)
    last_sweep_at: datetime | None = _ts(nullable=True)


class OnboardingStep(SQLModel, table=True):
    """A follow-up step of a run, recorded so a re-run never repeats a done step."""

    __tablename__ = "onboarding_step"
    __table_args__ = (UniqueConstraint("run_id", "step", name="uq_onboarding_step_run_step"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="onboarding_run.id", ondelete="CASCADE")
    step: str = Field(max_length=64)
    outcome: str = Field(default="done", max_length=16)
    done_at: datetime = _now_ts()
    detail: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class StatusObservation(SQLModel, table=True):
    """One observed change of a channel's status; repeats only move ``last_seen_at``."""

    __tablename__ = "status_observation"
    __table_args__ = (Index("ix_status_observation_channel_id", "channel_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel_id: str = Field(max_length=64)
    run_id: int | None = Field(
        default=None, foreign_key="onboarding_run.id", ondelete="SET NULL", index=True
    )
    availability_status: str | None = Field(default=None, max_length=32)
    status: str | None = Field(default=None, max_length=64)
    source: str = Field(max_length=16)
    observed_at: datetime = _now_ts()
    last_seen_at: datetime = _now_ts()
    seen_count: int = Field(default=1)


class ChannelSnapshot(SQLModel, table=True):
    """The latest known state of one of the partner's channels (the watcher's diff base)."""

    __tablename__ = "channel_snapshot"
    __table_args__ = (
        Index("ix_channel_snapshot_partner_availability", "partner_id", "availability_status"),
        Index("ix_channel_snapshot_client_id", "client_id"),
    )

    channel_id: str = Field(primary_key=True, max_length=64)
    partner_id: str = Field(max_length=64)
    client_id: str | None = Field(default=None, max_length=64)
    availability_status: str | None = Field(default=None, max_length=32)
    status: str | None = Field(default=None, max_length=64)
    phone_number: str | None = Field(default=None, max_length=32)
    client_name: str | None = Field(default=None, max_length=255)
    modified_at: datetime | None = _ts(nullable=True)
    first_seen_at: datetime = _now_ts()
    last_seen_at: datetime = _now_ts()
    changed_at: datetime = _now_ts()


class Alert(SQLModel, table=True):
    """A raised problem; at most one open (unresolved) alert per ``dedup_key``."""

    __tablename__ = "alert"
    __table_args__ = (
        Index(
            "uq_alert_open_dedup_key",
            "dedup_key",
            unique=True,
            postgresql_where=_OPEN_ALERT,
            sqlite_where=_OPEN_ALERT,
        ),
        Index("ix_alert_dedup_key", "dedup_key"),
        Index("ix_alert_channel_id", "channel_id"),
        Index("ix_alert_run_id", "run_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(max_length=255)
    kind: str = Field(max_length=64)
    severity: str = Field(max_length=16)
    partner_id: str = Field(max_length=64)
    channel_id: str | None = Field(default=None, max_length=64)
    run_id: int | None = Field(default=None, foreign_key="onboarding_run.id", ondelete="SET NULL")
    message: str = Field(sa_type=Text)
    details: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    first_raised_at: datetime = _now_ts()
    last_raised_at: datetime = _now_ts()
    last_notified_at: datetime | None = _ts(nullable=True)
    notify_count: int = Field(default=0)
    resolved_at: datetime | None = _ts(nullable=True)


class AlertDelivery(SQLModel, table=True):
    """One attempt to deliver an alert notice to one sink (scheme + host, never the full URL)."""

    __tablename__ = "alert_delivery"
    __table_args__ = (Index("ix_alert_delivery_outcome_attempted", "outcome", "attempted_at"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", ondelete="CASCADE", index=True)
    sink: str = Field(max_length=255)
    notice: str = Field(max_length=16)
    outcome: str = Field(max_length=16)
    error: str | None = Field(default=None, sa_type=Text)
    attempted_at: datetime = _now_ts()


class InboundEvent(SQLModel, table=True):
    """A partner webhook as received (the inbox): body, headers minus secrets, outcome.

    ``body`` is the body as it came for every event that parsed (valid UTF-8 JSON, which never
    holds a NUL byte); for a rejected one it is only a bounded prefix, decoded with backslash
    escapes (``\\xff``, ``\\x00``) because PostgreSQL text cannot hold NUL. ``body_sha256`` and
    ``body_size`` are those of the bytes received. A ``failed`` event is tried again from
    ``retry_at`` on; after the last attempt it is ``dead``.
    """

    __tablename__ = "inbound_event"
    __table_args__ = (
        Index("ix_inbound_event_outcome_received", "outcome", "received_at"),
        Index("ix_inbound_event_outcome_retry", "outcome", "retry_at"),
        Index("ix_inbound_event_channel_id", "channel_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(max_length=255, unique=True)
    event_type: str | None = Field(default=None, max_length=64)
    channel_id: str | None = Field(default=None, max_length=64)
    client_id: str | None = Field(default=None, max_length=64)
    body: str = Field(sa_type=Text)
    headers: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    received_at: datetime = _now_ts()
    handled_at: datetime | None = _ts(nullable=True)
    outcome: str = Field(default=EventOutcome.ACCEPTED, max_length=16)
    error: str | None = Field(default=None, sa_type=Text)
    attempts: int = Field(default=0)
    body_sha256: str | None = Field(default=None, max_length=64)
    body_size: int | None = Field(default=None, sa_type=BigInteger)
    retry_at: datetime | None = _ts(nullable=True)
