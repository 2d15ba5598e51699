"""Lifecycle: the installation row, permission/undelivered/adopted runs, retries, wake requests.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 06:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_ACTIVE = "state IN ('pending', 'waiting', 'ready')"
_NEW_ACTIVE = "state IN ('pending', 'waiting', 'permission', 'ready', 'undelivered')"


def _active_index(predicate: str) -> None:
    op.create_index(
        "uq_onboarding_run_active_channel",
        "onboarding_run",
        ["channel_id"],
        unique=True,
        postgresql_where=sa.text(predicate),
        sqlite_where=sa.text(predicate),
    )


def _drop_active_index(predicate: str) -> None:
    op.drop_index(
        "uq_onboarding_run_active_channel",
        table_name="onboarding_run",
        postgresql_where=sa.text(predicate),
        sqlite_where=sa.text(predicate),
    )


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "installation",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_sweep_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sweep_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation")),
    )
    with op.batch_alter_table("onboarding_run") as batch:
        batch.add_column(sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("wake_requests", sa.Integer(), nullable=False, server_default="0")
        )
    _drop_active_index(_OLD_ACTIVE)
    _active_index(_NEW_ACTIVE)


def downgrade() -> None:
    """Revert this revision."""
    _drop_active_index(_NEW_ACTIVE)
    _active_index(_OLD_ACTIVE)
    with op.batch_alter_table("onboarding_run") as batch:
        batch.drop_column("wake_requests")
        batch.drop_column("retry_at")
        batch.drop_column("waiting_since")
    op.drop_table("installation")
