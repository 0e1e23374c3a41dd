"""incentive_schemes: reward/penalty scheme versions published like strategies

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lienwatch.store.types import UTCDateTime

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incentive_schemes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("published_by", sa.Integer(), nullable=False),
        sa.Column("published_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["published_by"], ["users.id"],
                                name=op.f("fk_incentive_schemes_published_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incentive_schemes")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_incentive_schemes_name_version")),
    )


def downgrade() -> None:
    op.drop_table("incentive_schemes")
