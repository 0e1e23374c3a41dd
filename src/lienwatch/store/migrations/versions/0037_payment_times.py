"""payments.paid_at: the moment of a payment, unknown for an imported history

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-07 11:30:00

The hour rules of the abnormal-payment scan read it. Until now they read ``received_at``, the
moment lienwatch stored the payment: for a history imported from a file (value dates only),
the hour of the import, so the first payments posted live at another hour were flagged
``TIME_CHANGE``. A payment that reached lienwatch within two days of its value date was
posted live: its ``received_at`` is its moment. One stored later came in a file: no moment.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

from lienwatch.store.types import UTCDateTime

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None

_LIVE_WITHIN = timedelta(days=2)  # received this soon after its value date: posted live
_BATCH = 10_000


def upgrade() -> None:
    op.add_column("payments", sa.Column("paid_at", UTCDateTime(timezone=True), nullable=True))
    payments = sa.table("payments", sa.column("id", sa.Integer()), sa.column("paid_on", sa.Date()),
                        sa.column("received_at", UTCDateTime(timezone=True)),
                        sa.column("paid_at", UTCDateTime(timezone=True)))  # fmt: skip
    connection = op.get_bind()
    rows = connection.execute(sa.select(payments.c.id, payments.c.paid_on,
                                        payments.c.received_at)).all()  # fmt: skip
    live = [{"key": row.id, "moment": row.received_at} for row in rows
            if row.received_at.date() - row.paid_on <= _LIVE_WITHIN]  # fmt: skip
    update = (sa.update(payments).where(payments.c.id == sa.bindparam("key"))
              .values(paid_at=sa.bindparam("moment")))  # fmt: skip
    for start in range(0, len(live), _BATCH):
        connection.execute(update, live[start : start + _BATCH])


def downgrade() -> None:
    op.drop_column("payments", "paid_at")
