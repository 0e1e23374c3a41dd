"""The `lienwatch` command. Sub-commands sit on top of the capability packages."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from lienwatch import __version__
from lienwatch.commands import (
    book_import,
    db,
    demo,
    devices,
    followup,
    gateway,
    ledger,
    payments,
    replay,
    report,
    repossession,
    serve,
    servicing,
    telematics,
    users,
    worker,
)
from lienwatch.errors import LienwatchError

app = typer.Typer(
    name="lienwatch",
    help="Post-loan risk platform for auto finance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings wrap lines; markdown joins them back
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"lienwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Post-loan risk platform for auto finance."""


for module in (
    db,
    demo,
    servicing,
    payments,
    book_import,
    replay,
    gateway,
    telematics,
    devices,
    serve,
    worker,
    followup,
    repossession,
    users,
    report,
    ledger,
):
    module.register(app)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 1.

    Usage errors keep typer's own message and status 2; anything else is a bug and keeps
    its traceback.
    """
    try:
        app()
    except (LienwatchError, ValueError) as exc:
        print(f"lienwatch: error: {exc}", file=sys.stderr)
        sys.exit(1)
