"""behaviour_fits.published_by/published_at: a fit scores cases only once an analyst publishes it

Fits stored before this revision stay unpublished: they were fitted on the features before
the offline time (``log_offline_hours_3m``), which this version cannot score with. Refit and
publish (docs/risk.md, "Refitting and publishing the behaviour score").

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lienwatch.store.types import UTCDateTime

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("behaviour_fits", sa.Column("published_by", sa.String(length=80)))
    op.add_column("behaviour_fits", sa.Column("published_at", UTCDateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("behaviour_fits") as batch:
        batch.drop_column("published_at")
        batch.drop_column("published_by")
