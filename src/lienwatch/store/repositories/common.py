"""What every repository shares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_duplicates(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]]
) -> int:
    """Insert ``rows``, skipping those that collide with a unique constraint; return how many
    were new."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # RETURNING counts the rows really inserted on every driver (executemany's rowcount is -1
    # on psycopg); SQLAlchemy batches it into multi-row VALUES statements.
    statement = insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)
    return len(session.execute(statement, list(rows)).all())

