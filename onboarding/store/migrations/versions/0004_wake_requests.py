"""Wake requests: when a waker last asked for the channel's onboarding to run.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("onboarding_run") as batch:
        batch.add_column(sa.Column("wake_requested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("onboarding_run") as batch:
        batch.drop_column("wake_requested_at")
