"""devices.fitted_on: the day the tracker was fitted to its vehicle

A fix dated before that day (a device replaying an older history, a clock reset) is refused
by the gateway and HTTP ingest and counted as ``before_fitting``. Devices registered before
this revision have no fitting day (NULL): their fixes are not checked against one.

Revision ID: 0011
Revises: 0010 (ledger)
Create Date: 2026-12-06 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fitted_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("fitted_on")
