"""`lienwatch db`: schema migrations."""

from __future__ import annotations

from pathlib import Path

import typer
from alembic.util import CommandError
from sqlalchemy import Engine

from lienwatch.commands.common import emit
from lienwatch.commands.options import Json
from lienwatch.config import load_settings
from lienwatch.store import migrate
from lienwatch.store.db import DatabaseError, check_connection, make_engine

db_app = typer.Typer(help="Database schema: apply and inspect migrations.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(
    revision: str = typer.Argument("head", help="Target revision."), as_json: Json = False
) -> None:
    """Apply migrations to the configured database (LIENWATCH_DATABASE_URL or the config file)."""
    settings = load_settings()
    engine = make_engine(settings.database_url)
    check_connection(engine)
    try:
        migrate.upgrade(engine, revision)
    except CommandError as exc:
        raise DatabaseError(f"revision {revision!r}: {exc} (the newest is "
                            f"{migrate.head_revision()})") from None  # fmt: skip
    now = migrate.current_revision(engine)
    emit({"revision": now}, as_json, f"database at revision {now}")


@db_app.command("current")
def current(as_json: Json = False) -> None:
    """Print the database's revision and the newest one this version knows."""
    engine = make_engine(load_settings().database_url)
    _refuse_missing_file(engine)
    check_connection(engine)
    now, head = migrate.current_revision(engine), migrate.head_revision()
    emit({"current": now, "head": head}, as_json, f"current {now or '(empty)'}, head {head}")


def _refuse_missing_file(engine: Engine) -> None:
    """Asking about a SQLite file that is not there must not create it."""
    path = engine.url.database
    if engine.dialect.name == "sqlite" and path and path != ":memory:" and not Path(path).exists():
        raise DatabaseError(f"no database at {path} (`lienwatch db upgrade` creates it)")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
