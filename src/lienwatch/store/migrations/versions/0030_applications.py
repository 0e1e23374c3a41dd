"""applications and scorecards: each scored application's attributes and the fit's reference
distribution, for the scorecard's stability in the daily report (issue 17)

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lienwatch.store.types import UTCDateTime

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scorecards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("reference", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scorecards")),
        sa.UniqueConstraint("digest", name=op.f("uq_scorecards_digest")),
    )
    op.create_table(
        "applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=80), nullable=False),
        sa.Column("scorecard_id", sa.Integer(), nullable=False),
        sa.Column("loan_id", sa.Integer(), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("decided_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=2), nullable=False),
        sa.Column("decision", sa.String(length=10), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["scorecard_id"], ["scorecards.id"],
                                name=op.f("fk_applications_scorecard_id_scorecards")),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"],
                                name=op.f("fk_applications_loan_id_loans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
        sa.UniqueConstraint("ref", name=op.f("uq_applications_ref")),
        sa.UniqueConstraint("loan_id", name=op.f("uq_applications_loan_id")),
    )
    op.create_index(op.f("ix_applications_decided_on"), "applications", ["decided_on"])


def downgrade() -> None:
    op.drop_index(op.f("ix_applications_decided_on"), table_name="applications")
    op.drop_table("applications")
    op.drop_table("scorecards")
