"""vehicles.permitted_area: the lender-defined permitted region a vehicle is judged by

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


def upgrade() -> None:
    op.add_column("vehicles", sa.Column("permitted_area", sa.String(length=80), nullable=True))


def downgrade() -> None:
    op.drop_column("vehicles", "permitted_area")
