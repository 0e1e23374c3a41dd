"""behaviour challenger and payers: behaviour_fits, cases.roll_score, payments.payer_*

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06 22:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lienwatch.store.types import UTCDateTime

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "behaviour_fits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fitted_through", sa.Date(), nullable=False),
        sa.Column("model", sa.JSON(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("fitted_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_behaviour_fits")),
    )
    op.create_index(op.f("ix_behaviour_fits_fitted_through"), "behaviour_fits",
                    ["fitted_through"])  # fmt: skip
    op.add_column("cases", sa.Column("roll_score", sa.Float(), nullable=True))
    op.add_column("payments", sa.Column("payer_account", sa.String(length=64), nullable=True))
    op.add_column("payments", sa.Column("payer_name", sa.String(length=200), nullable=True))
    op.create_index(op.f("ix_payments_payer_account"), "payments", ["payer_account"])

def downgrade() -> None:
    op.drop_index(op.f("ix_payments_payer_account"), table_name="payments")
    op.drop_column("payments", "payer_name")
    op.drop_column("payments", "payer_account")
    op.drop_column("cases", "roll_score")
    op.drop_index(op.f("ix_behaviour_fits_fitted_through"), table_name="behaviour_fits")
    op.drop_table("behaviour_fits")
