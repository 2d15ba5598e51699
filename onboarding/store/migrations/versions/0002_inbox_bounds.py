"""Inbox bounds: body hash and size, and when a failed event is due again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 06:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("inbound_event") as batch:
        batch.add_column(sa.Column("body_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("body_size", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_inbound_event_outcome_retry", ["outcome", "retry_at"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("inbound_event") as batch:
        batch.drop_index("ix_inbound_event_outcome_retry")
        batch.drop_column("retry_at")
        batch.drop_column("body_size")
        batch.drop_column("body_sha256")
