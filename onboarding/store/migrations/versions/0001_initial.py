"""Initial schema: runs, steps, observations, snapshots, alerts, deliveries, inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 06:07:33.307513
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "channel_snapshot",
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("availability_status", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=64), nullable=True),
        sa.Column("phone_number", sa.String(length=32), nullable=True),
        sa.Column("client_name", sa.String(length=255), nullable=True),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_channel_snapshot")),
    )
    op.create_index(
        "ix_channel_snapshot_client_id", "channel_snapshot", ["client_id"], unique=False
    )
    op.create_index(
        "ix_channel_snapshot_partner_availability",
        "channel_snapshot",
        ["partner_id", "availability_status"],
        unique=False,
    )
    op.create_table(
        "inbound_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=True),
        sa.Column("channel_id", sa.String(length=64), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_event")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_inbound_event_dedup_key")),
    )
    op.create_index("ix_inbound_event_channel_id", "inbound_event", ["channel_id"], unique=False)
    op.create_index(
        "ix_inbound_event_outcome_received",
        "inbound_event",
        ["outcome", "received_at"],
        unique=False,
    )
    op.create_table(
        "onboarding_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("client_name", sa.String(length=255), nullable=True),
        sa.Column("phone_number", sa.String(length=32), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("availability_status", sa.String(length=32), nullable=True),
        sa.Column("channel_status", sa.String(length=64), nullable=True),
        sa.Column("stage", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onboarding_run")),
    )
    op.create_index(
        "ix_onboarding_run_channel_started",
        "onboarding_run",
        ["channel_id", "started_at"],
        unique=False,
    )
    op.create_index(
        "ix_onboarding_run_client_started",
        "onboarding_run",
        ["client_id", "started_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_onboarding_run_flow_run_id"), "onboarding_run", ["flow_run_id"], unique=False
    )
    op.create_index(
        "ix_onboarding_run_partner_state", "onboarding_run", ["partner_id", "state"], unique=False
    )
    op.create_index(
        "ix_onboarding_run_state_deadline", "onboarding_run", ["state", "deadline_at"], unique=False
    )
    op.create_index(
        "uq_onboarding_run_active_channel",
        "onboarding_run",
        ["channel_id"],
        unique=True,
        postgresql_where=sa.text("state IN ('pending', 'waiting', 'ready')"),
        sqlite_where=sa.text("state IN ('pending', 'waiting', 'ready')"),
    )
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("first_raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notify_count", sa.Integer(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["onboarding_run.id"],
            name=op.f("fk_alert_run_id_onboarding_run"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
    )
    op.create_index("ix_alert_channel_id", "alert", ["channel_id"], unique=False)
    op.create_index("ix_alert_dedup_key", "alert", ["dedup_key"], unique=False)
    op.create_index("ix_alert_run_id", "alert", ["run_id"], unique=False)
    op.create_index(
        "uq_alert_open_dedup_key",
        "alert",
        ["dedup_key"],
        unique=True,
        postgresql_where=sa.text("resolved_at IS NULL"),
        sqlite_where=sa.text("resolved_at IS NULL"),
    )
    op.create_table(
        "onboarding_step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["onboarding_run.id"],
            name=op.f("fk_onboarding_step_run_id_onboarding_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onboarding_step")),
        sa.UniqueConstraint("run_id", "step", name="uq_onboarding_step_run_step"),
    )
    op.create_table(
        "status_observation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("availability_status", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["onboarding_run.id"],
            name=op.f("fk_status_observation_run_id_onboarding_run"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_observation")),
    )
    op.create_index(
        "ix_status_observation_channel_id", "status_observation", ["channel_id", "id"], unique=False
    )
    op.create_index(
        op.f("ix_status_observation_run_id"), "status_observation", ["run_id"], unique=False
    )
    op.create_table(
        "alert_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("sink", sa.String(length=255), nullable=False),
        sa.Column("notice", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alert.id"],
            name=op.f("fk_alert_delivery_alert_id_alert"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_delivery")),
    )
    op.create_index(
        op.f("ix_alert_delivery_alert_id"), "alert_delivery", ["alert_id"], unique=False
    )
    op.create_index(
        "ix_alert_delivery_outcome_attempted",
        "alert_delivery",
        ["outcome", "attempted_at"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_alert_delivery_outcome_attempted", table_name="alert_delivery")
    op.drop_index(op.f("ix_alert_delivery_alert_id"), table_name="alert_delivery")
    op.drop_table("alert_delivery")
    op.drop_index(op.f("ix_status_observation_run_id"), table_name="status_observation")
    op.drop_index("ix_status_observation_channel_id", table_name="status_observation")
    op.drop_table("status_observation")
    op.drop_table("onboarding_step")
    op.drop_index(
        "uq_alert_open_dedup_key",
        table_name="alert",
        postgresql_where=sa.text("resolved_at IS NULL"),
        sqlite_where=sa.text("resolved_at IS NULL"),
    )
    op.drop_index("ix_alert_run_id", table_name="alert")
    op.drop_index("ix_alert_dedup_key", table_name="alert")
    op.drop_index("ix_alert_channel_id", table_name="alert")
    op.drop_table("alert")
    op.drop_index(
        "uq_onboarding_run_active_channel",
        table_name="onboarding_run",
        postgresql_where=sa.text("state IN ('pending', 'waiting', 'ready')"),
        sqlite_where=sa.text("state IN ('pending', 'waiting', 'ready')"),
    )
    op.drop_index("ix_onboarding_run_state_deadline", table_name="onboarding_run")
    op.drop_index("ix_onboarding_run_partner_state", table_name="onboarding_run")
    op.drop_index(op.f("ix_onboarding_run_flow_run_id"), table_name="onboarding_run")
    op.drop_index("ix_onboarding_run_client_started", table_name="onboarding_run")
    op.drop_index("ix_onboarding_run_channel_started", table_name="onboarding_run")
    op.drop_table("onboarding_run")
    op.drop_index("ix_inbound_event_outcome_received", table_name="inbound_event")
    op.drop_index("ix_inbound_event_channel_id", table_name="inbound_event")
    op.drop_table("inbound_event")
    op.drop_index("ix_channel_snapshot_partner_availability", table_name="channel_snapshot")
    op.drop_index("ix_channel_snapshot_client_id", table_name="channel_snapshot")
    op.drop_table("channel_snapshot")
