"""Alembic environment: runs on the connection that `lienwatch.store.migrate` hands over."""

from __future__ import annotations

from alembic import context

from lienwatch.store.partitions import include_object
from lienwatch.store.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
    compare_type=True,
    include_object=include_object,
)
with context.begin_transaction():
    context.run_migrations()
