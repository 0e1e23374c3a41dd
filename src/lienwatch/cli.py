"""The `lienwatch` command. Sub-commands sit on top of the capability packages."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from lienwatch import __version__
from lienwatch.commands import (
    alerts,
    book_import,
    corrections,
    db,
    demo,
    devices,
    followup,
    gateway,
    ledger,
    payments,
    positions,
    replay,
    report,
    repossession,
    risk,
    serve,
    servicing,
    teams,
    telematics,
    users,
    worker,
)
from lienwatch.config import command_line
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
    db: Annotated[
        str | None,
        typer.Option(
            "--db", metavar="URL",
            help="Database URL, e.g. sqlite:///lienwatch-demo/lienwatch.sqlite3 "
            "[default: LIENWATCH_DATABASE_URL or the config file's database_url].",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", metavar="FILE", dir_okay=False,
            help="Config file [default: LIENWATCH_CONFIG or ./lienwatch.toml].",
        ),
    ] = None,
) -> None:
    """Post-loan risk platform for auto finance."""
    command_line.database_url = db
    command_line.config_file = config


for module in (
    db,
    demo,
    servicing,
    payments,
    book_import,
    corrections,
    replay,
    gateway,
    telematics,
    positions,
    devices,
    serve,
    worker,
    followup,
    repossession,
    teams,
    users,
    report,
    ledger,
    alerts,
    risk,
):
    module.register(app)


#: click's exception types as typer ships them (vendored in newer typer, click's own before).
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main(args: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit status 1; usage errors
    (a missing option, a bad value refused at the option) one line and status 2. Anything
    else is a bug and keeps its traceback."""
    try:
        status = app(args=args, prog_name="lienwatch", standalone_mode=False)
    except _UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `lienwatch followup`: its help
            exc.show()
            sys.exit(exc.exit_code)
        param = getattr(exc, "param", None)
        if type(exc) is typer.BadParameter and param is not None:  # a value refused
            name = param.opts[0] if param.param_type_name == "option" else param.name.upper()
            print(f"lienwatch: error: {name}: {' '.join(exc.message.split())}", file=sys.stderr)
            sys.exit(exc.exit_code)
        where = exc.ctx.command_path if exc.ctx is not None else "lienwatch"
        message = " ".join(exc.format_message().split()).rstrip(".")
        print(f"lienwatch: error: {message} (see `{where} --help`)", file=sys.stderr)
        sys.exit(exc.exit_code)
    except _ClickException as exc:
        print(f"lienwatch: error: {' '.join(exc.format_message().split())}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("lienwatch: aborted", file=sys.stderr)
        sys.exit(1)
    except (LienwatchError, ValueError) as exc:
        print(f"lienwatch: error: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:  # the options were this command's (a test runs many in one process)
        command_line.database_url = command_line.config_file = None
    sys.exit(status if isinstance(status, int) else 0)
