"""vehicles.permitted_area: the lender-defined permitted region a vehicle is judged by;
partial indexes for the follow-up tick's coverage check (the day's past-due loans, the open
delinquency triggers' loans), which it reads at every tick as a merge of the two

Revision ID: 0033
Revises: 0031
Create Date: 2026-12-07 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0031"
branch_labels = None
depends_on = None


_OPEN_DELINQUENCY = (
    "resolved_at IS NULL AND kind IN ('broken_promise', 'bucket_change', 'missed_installment')"
)


def upgrade() -> None:
    op.add_column("vehicles", sa.Column("permitted_area", sa.String(length=80), nullable=True))
    past_due = sa.text("dpd > 0")
    op.create_index("ix_loan_snapshots_past_due", "loan_snapshots", ["as_of", "loan_id"],
                    postgresql_where=past_due, sqlite_where=past_due)  # fmt: skip
    open_delinquency = sa.text(_OPEN_DELINQUENCY)
    op.create_index("ix_triggers_open_delinquency", "triggers", ["loan_id"],
                    postgresql_where=open_delinquency, sqlite_where=open_delinquency)  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_triggers_open_delinquency", table_name="triggers")
    op.drop_index("ix_loan_snapshots_past_due", table_name="loan_snapshots")
    op.drop_column("vehicles", "permitted_area")
