"""loans.operator_status: a terminal status set by an operator, apart from the derived one

The nightly run derives ``loans.status`` from the payments; an operator's status
(repossessed, settled, written-off) is kept in its own column so that a derived ``settled``
(an early payoff) is recomputed when its payment bounces, while an operator's is kept.

Revision ID: 0006
Revises: 0005 (follow-up)
Create Date: 2026-11-28 19:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("operator_status", sa.String(length=16), nullable=True))
    # until now only an operator could have stored these two; a stored "settled" was derived
    op.execute(
        "UPDATE loans SET operator_status = status WHERE status IN ('repossessed', 'written-off')"
    )


def downgrade() -> None:
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_column("operator_status")
