"""repossession and disposal: repossession orders with their steps' figures, and their costs

Revision ID: 0007
Revises: 0006 (operator status)
Create Date: 2026-11-28 20:18:42
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lienwatch.store.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repossessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("loan_id", sa.Integer(), nullable=False),
        sa.Column("jurisdiction", sa.String(length=8), nullable=False),
        sa.Column("route", sa.String(length=24), nullable=False),
        sa.Column("legal_ref", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("dpd_at_order", sa.Integer(), nullable=False),
        sa.Column("snapshot_on", sa.Date(), nullable=False),
        sa.Column("ordered_by", sa.Integer(), nullable=False),
        sa.Column("ordered_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.Integer(), nullable=True),
        sa.Column("approved_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column(
            "next_deadline_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("recovered_on", sa.Date(), nullable=True),
        sa.Column("recovered_place", sa.String(length=200), nullable=True),
        sa.Column("condition", sa.String(length=200), nullable=True),
        sa.Column("property_returned", sa.Boolean(), nullable=True),
        sa.Column("appraised_value", sa.BigInteger(), nullable=True),
        sa.Column("sold_on", sa.Date(), nullable=True),
        sa.Column("sale_price", sa.BigInteger(), nullable=True),
        sa.Column("buyer", sa.String(length=200), nullable=True),
        sa.Column("costs_recovered", sa.BigInteger(), nullable=True),
        sa.Column("paid_to_loan", sa.BigInteger(), nullable=True),
        sa.Column("surplus", sa.BigInteger(), nullable=True),
        sa.Column("surplus_ref", sa.String(length=120), nullable=True),
        sa.Column("deficiency", sa.BigInteger(), nullable=True),
        sa.Column("closed_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["approved_by"], ["users.id"], name=op.f("fk_repossessions_approved_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name=op.f("fk_repossessions_assignee_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_repossessions_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_repossessions_loan_id_loans")
        ),
        sa.ForeignKeyConstraint(
            ["ordered_by"], ["users.id"], name=op.f("fk_repossessions_ordered_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repossessions")),
        sa.UniqueConstraint("case_id", name=op.f("uq_repossessions_case_id")),
    )
    with op.batch_alter_table("repossessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_repossessions_loan_id"), ["loan_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_repossessions_next_deadline_at"), ["next_deadline_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_repossessions_status"), ["status"], unique=False)

    op.create_table(
        "repossession_costs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repossession_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("incurred_on", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=False),
        sa.Column("recorded_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_repossession_costs_recorded_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["repossession_id"],
            ["repossessions.id"],
            name=op.f("fk_repossession_costs_repossession_id_repossessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repossession_costs")),
    )
    with op.batch_alter_table("repossession_costs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_repossession_costs_repossession_id"), ["repossession_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("repossession_costs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repossession_costs_repossession_id"))

    op.drop_table("repossession_costs")
    with op.batch_alter_table("repossessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repossessions_status"))
        batch_op.drop_index(batch_op.f("ix_repossessions_next_deadline_at"))
        batch_op.drop_index(batch_op.f("ix_repossessions_loan_id"))

    op.drop_table("repossessions")
