"""triggers_due_index: the open triggers by next due time, so the follow-up tick claims what
is due without reading the open book (issue 20)

Revision ID: 0021
Revises: 0016
Create Date: 2026-12-06 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0016"
branch_labels = None
depends_on = None

_OPEN = sa.text("resolved_at IS NULL")


def upgrade() -> None:
    op.create_index("ix_triggers_open_due", "triggers", ["next_due_at"],
                    sqlite_where=_OPEN, postgresql_where=_OPEN)  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_triggers_open_due", table_name="triggers")
