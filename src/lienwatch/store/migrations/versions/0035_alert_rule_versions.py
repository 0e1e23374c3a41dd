"""alert_rule_versions: the monitor's alert rules published like strategies

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lienwatch.store.types import UTCDateTime

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_rule_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("published_by", sa.Integer(), nullable=False),
        sa.Column("published_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["published_by"], ["users.id"],
                                name=op.f("fk_alert_rule_versions_published_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rule_versions")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_alert_rule_versions_name_version")),
    )


def downgrade() -> None:
    op.drop_table("alert_rule_versions")
