"""loan grades: the origination score and grade of the pre-loan decision (issue 16)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both backends (SQLite 3.35+ drops columns itself): a batch operation
# would copy and drop ``loans``, which the rows referencing it forbid.
def upgrade() -> None:
    op.add_column("loans", sa.Column("score", sa.Integer(), nullable=True))
    op.add_column("loans", sa.Column("grade", sa.String(length=2), nullable=True))


def downgrade() -> None:
    op.drop_column("loans", "grade")
    op.drop_column("loans", "score")
