"""Schema migrations with Alembic, configured in code (no alembic.ini to lose)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from lienwatch.store.db import Database, DatabaseError, open_database

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` in one transaction."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def require_head(engine: Engine) -> None:
    """Refuse to run long-lived processes on a schema other than this code's: raise
    :class:`DatabaseError` naming both revisions and the command that fixes it, instead of
    every job failing on a missing table."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise DatabaseError(
            f"database at revision {current or '(empty)'}, this lienwatch needs {head}: "
            "run `lienwatch db upgrade`"
        )


@contextmanager
def open_store(url: str) -> Iterator[Database]:
    """The database at ``url``, at the schema this lienwatch needs. A new, empty SQLite
    database (the embedded default) is created at the head, with one line saying so, so the
    first command just works; any other database at another revision is refused in one line
    naming the command that fixes it (:func:`require_head`)."""
    with open_database(url) as database:
        engine = database.engine
        if current_revision(engine) != head_revision():
            if engine.dialect.name == "sqlite" and not inspect(engine).get_table_names():
                upgrade(engine)
                log.warning("created a new database %s at revision %s",
                            engine.url.database, head_revision())  # fmt: skip
            require_head(engine)
        yield database


def autogenerate(engine: Engine, message: str) -> None:
    """Write a new revision from the difference between the tables and the database (developers)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
