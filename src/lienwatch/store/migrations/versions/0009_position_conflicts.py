"""position_conflicts; JT/T 808 auth codes stored as digests; devices.partner

A second fix for a (device, fix time) already stored is dropped when it repeats the stored
position; when it reports another position it is kept in ``position_conflicts``, beside the
position stored first, as evidence that two sources report for one device (a cloned or
spoofed tracker).

``devices.auth_code`` now holds the SHA-256 digest (hex) of the code: the codes stored in
clear are replaced by their digests. Downgrade cannot recover the codes: it forgets them, and
the terminals register again.

``devices.partner`` names the HTTP ingest partner that alone may post for a device (NULL: any
partner, as before).

Revision ID: 0009
Revises: 0008 (repossession steps)
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import hashlib

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

    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner", sa.String(length=60), nullable=True))
    devices = sa.table("devices", sa.column("id", sa.Integer), sa.column("auth_code", sa.String))
    connection = op.get_bind()
    issued = connection.execute(
        sa.select(devices.c.id, devices.c.auth_code).where(devices.c.auth_code.is_not(None))
    ).all()
    for device_id, code in issued:
        digest = hashlib.sha256(code.encode()).hexdigest()
        connection.execute(
            devices.update().where(devices.c.id == device_id).values(auth_code=digest)
        )


def downgrade() -> None:
    devices = sa.table("devices", sa.column("auth_code", sa.String))
    op.execute(devices.update().values(auth_code=None))
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("partner")
    op.drop_table("position_conflicts")
