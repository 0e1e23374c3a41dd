"""positions_by_month: on PostgreSQL, positions partitioned by month on fix_time; an index
of the loans an operator closed by hand, for the follow-up tick (issue 20)

The existing table is renamed, a partitioned ``positions`` made in its place with the same
columns, constraint names and id sequence, a partition for every month from its oldest fix to
two months from now plus a default partition, the rows copied over and the old table
dropped: all in the migration's one transaction, so a failure leaves the old table as it was.
The copy holds the old table's lock while it runs (docs/scaling.md gives the rate), so a table
of more than ``MIGRATION_CONVERTS_UP_TO`` rows is left unpartitioned, with a warning, for
``lienwatch positions partition`` (online, in batches). SQLite is unchanged.

Revision ID: 0029
Revises: 0023
Create Date: 2026-12-06 23:00:00
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from alembic import op
from sqlalchemy import text

from lienwatch import clock
from lienwatch.store.partitions import MIGRATION_CONVERTS_UP_TO

revision = "0029"
down_revision = "0023"
branch_labels = None
depends_on = None

_COLUMNS = "id, device_id, fix_time, received_at, lat, lon, speed_kmh, course, valid, alarms, archived"
_AHEAD = 2


def _month(moment: datetime) -> date:
    moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _bound(month: date) -> str:
    return f"{month.isoformat()} 00:00:00+00"


_OPERATOR_SET = text("operator_status IS NOT NULL")


def _set_aside(name: str) -> None:
    """Rename ``positions`` and its constraints, freeing the names for the new table."""
    op.execute(f"ALTER TABLE positions RENAME TO {name}")
    for constraint in ("pk_positions", "uq_positions_device_id_fix_time",
                       "fk_positions_device_id_devices"):  # fmt: skip
        op.execute(f"ALTER TABLE {name} RENAME CONSTRAINT {constraint} TO {constraint}_old")


def _constrain(primary_key: str) -> None:
    """The new ``positions``' keys, named as the old table's were."""
    op.execute(f"ALTER TABLE positions ADD CONSTRAINT pk_positions PRIMARY KEY ({primary_key})")
    op.execute(
        "ALTER TABLE positions ADD CONSTRAINT uq_positions_device_id_fix_time "
        "UNIQUE (device_id, fix_time)"
    )
    op.execute(
        "ALTER TABLE positions ADD CONSTRAINT fk_positions_device_id_devices "
        "FOREIGN KEY (device_id) REFERENCES devices (id)"
    )


def upgrade() -> None:
    # the loans an operator closed by hand, for the follow-up tick (both backends)
    op.create_index("ix_loans_operator_set", "loans", ["id"],
                    sqlite_where=_OPERATOR_SET, postgresql_where=_OPERATOR_SET)  # fmt: skip
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    limit = MIGRATION_CONVERTS_UP_TO
    rows = bind.scalar(text(f"SELECT count(*) FROM (SELECT 1 FROM positions LIMIT {limit + 1}) t"))
    if rows > limit:
        logging.getLogger(__name__).warning(
            "positions: more than %d rows, left unpartitioned: convert them online with "
            "`lienwatch positions partition` (docs/scaling.md)", limit)  # fmt: skip
        return
    _set_aside("positions_unpartitioned")
    op.execute(
        "CREATE TABLE positions (LIKE positions_unpartitioned INCLUDING DEFAULTS) "
        "PARTITION BY RANGE (fix_time)"
    )
    op.execute("ALTER SEQUENCE positions_id_seq OWNED BY positions.id")
    _constrain("id, fix_time")  # a partitioned table's unique keys hold the partition key
    oldest, newest = bind.execute(
        text("SELECT min(fix_time), max(fix_time) FROM positions_unpartitioned")
    ).one()
    month = last = _month(clock.now())
    for _ in range(_AHEAD):
        last = _next(last)
    if oldest is not None:
        month, last = min(month, _month(oldest)), max(last, _month(newest))
    while month <= last:
        op.execute(
            f"CREATE TABLE positions_p{month:%Y%m} PARTITION OF positions "
            f"FOR VALUES FROM ('{_bound(month)}') TO ('{_bound(_next(month))}')"
        )
        month = _next(month)
    op.execute("CREATE TABLE positions_default PARTITION OF positions DEFAULT")
    op.execute(
        f"INSERT INTO positions ({_COLUMNS}) SELECT {_COLUMNS} FROM positions_unpartitioned"
    )
    op.execute("DROP TABLE positions_unpartitioned")
    op.execute("ANALYZE positions")


def downgrade() -> None:
    op.drop_index("ix_loans_operator_set", table_name="loans")
    bind = op.get_bind()
    partitioned = "SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass('positions')"
    if bind.dialect.name != "postgresql" or not bind.scalar(text(partitioned)):
        return  # left unpartitioned by the upgrade
    _set_aside("positions_partitioned")
    op.execute("CREATE TABLE positions (LIKE positions_partitioned INCLUDING DEFAULTS)")
    op.execute("ALTER SEQUENCE positions_id_seq OWNED BY positions.id")
    op.execute(
        f"INSERT INTO positions ({_COLUMNS}) SELECT {_COLUMNS} FROM positions_partitioned"
    )
    _constrain("id")
    op.execute("DROP TABLE positions_partitioned")  # its partitions go with it
