"""Schema migrations with Alembic, configured in code (no alembic.ini to lose).

Every command checks the schema (:func:`open_store`), so that check reads the revision with one
query and the head from the scripts' file names (:func:`head_revision`), and Alembic itself is
imported only to migrate: it and the migration scripts cost each command a fifth of a second.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from lienwatch.store.db import SQLITE_BEGIN, Database, DatabaseError, open_database

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def _run(engine: Engine, verb: str, *args: str, **kwargs: object) -> None:
    """Alembic's command ``verb`` in one transaction on ``engine``."""
    from alembic import command

    config = alembic_config(engine)
    with engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"}).begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, verb)(config, *args, **kwargs)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` in one transaction."""
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    _run(engine, "downgrade", revision)


def current_revision(engine: Engine) -> str | None:
    """The revision in Alembic's ``alembic_version`` table; None for a database without one."""
    if not inspect(engine).has_table("alembic_version"):
        return None
    with engine.connect() as connection:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str:
    """The newest migration's revision: each script is named after its revision
    (``0031_behaviour_challenger.py``) and each revision's number is above the one it follows,
    which tests/store/test_migrations.py checks against Alembic's own graph."""
    return max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*.py"))


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
    _run(engine, "revision", message=message, autogenerate=True)
