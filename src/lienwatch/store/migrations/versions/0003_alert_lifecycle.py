"""alert lifecycle: the monitor's alert key, when it was raised and last updated, repeats

Revision ID: 0003
Revises: 0002 (servicing snapshots)
Create Date: 2026-11-28 20:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lienwatch.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key", sa.String(length=120), nullable=True))
        batch_op.add_column(
            sa.Column("raised_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("updated_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("repeats", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.create_unique_constraint(batch_op.f("uq_alerts_key"), ["key"])


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_alerts_key"), type_="unique")
        batch_op.drop_column("repeats")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("raised_at")
        batch_op.drop_column("key")
