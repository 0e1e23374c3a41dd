"""What the commands share besides their options: one way to open the configured database
for a command, and one way to print a result (a readable text, or one JSON document with
``--json``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

from lienwatch.config import Settings, load_settings
from lienwatch.errors import LienwatchError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lienwatch.services.followup import FollowupService

# The store and the services are imported by the functions that open them: a command module
# imports this one, and `lienwatch --help` or a usage error must not pay for them (cli.COMMANDS).


@contextmanager
def options_named(**options: str) -> Iterator[None]:
    """Errors of the block that name a field of a service (``promised_on: ...``) name the
    command's option instead (``--promise-date: ...``), as the user typed it."""
    try:
        yield
    except LienwatchError as exc:
        field, colon, rest = str(exc).partition(": ")
        if colon and field in options and exc.args:
            exc.args = (f"{options[field]}: {rest}", *exc.args[1:])
        raise


def configure_logging(settings: Settings) -> None:
    """The one logging set-up of the long-running commands (serve, worker, gateway): records
    at ``log_level`` and above, with their time, on standard error."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(message)s")


@contextmanager
def store_session(*, write: bool = True) -> Iterator[tuple[Settings, Session]]:
    """The settings and a session in one transaction on the configured database (at the
    schema this lienwatch needs): committed when the block ends, rolled back on an error;
    ``write=False`` for a command that only reads (``lienwatch.store.db.transaction``)."""
    from lienwatch.store.db import transaction
    from lienwatch.store.migrate import open_store

    settings = load_settings()
    with (
        open_store(settings.database_url) as database,
        transaction(database.factory, write=write) as session,
    ):
        yield settings, session


@contextmanager
def followup_service(*, write: bool = True) -> Iterator[tuple[Session, FollowupService]]:
    """The follow-up service of the configured book in one transaction (``write=False``
    for a command that only reads); a bad strategy or product table is said before any
    database work."""
    from lienwatch.followup.strategy import configured_strategy
    from lienwatch.services.followup import FollowupService
    from lienwatch.servicing.catalogue import ProductCatalogue
    from lienwatch.store.db import transaction
    from lienwatch.store.migrate import open_store

    settings = load_settings()
    catalogue = ProductCatalogue.from_tables(settings.products)
    configured_strategy(settings.followup.strategy)
    with (
        open_store(settings.database_url) as database,
        transaction(database.factory, write=write) as s,
    ):
        yield s, FollowupService.from_settings(
            s, settings.followup, time_zone=settings.time_zone, catalogue=catalogue
        )


def emit(data: Any, as_json: bool, lines: Sequence[str] | str) -> None:
    """Print ``data`` as one JSON document with ``--json``, else the readable ``lines``."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        typer.echo(lines if isinstance(lines, str) else "\n".join(lines))


def figure_lines(data: dict[str, Any]) -> list[str]:
    """``key: value`` lines for a flat or nested result (nested values as compact JSON)."""

    def text(value: Any) -> str:
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False)
        return str(value)

    return [f"{key}: {text(value)}" for key, value in data.items()]
