"""position_conflicts: fixes that contradict a stored fix of the same device and time

A second fix for a (device, fix time) already stored is dropped when it repeats the stored
position; when it reports another position it is kept here, beside the position stored first,
as evidence that two sources report for one device (a cloned or spoofed tracker).

Revision ID: 0009
Revises: 0008 (repossession steps)
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lienwatch.store.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "position_conflicts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("fix_time", lienwatch.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("speed_kmh", sa.Float(), nullable=False),
        sa.Column("course", sa.SmallInteger(), nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("alarms", sa.String(length=200), nullable=False),
        sa.Column("stored_lat", sa.Float(), nullable=False),
        sa.Column("stored_lon", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_position_conflicts_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_position_conflicts")),
    )
    with op.batch_alter_table("position_conflicts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_position_conflicts_device_id"), ["device_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("position_conflicts")
