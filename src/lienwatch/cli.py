"""The `lienwatch` command. Sub-commands sit on top of the capability packages."""

from __future__ import annotations

import gc
import importlib
import sys
from functools import cache
from pathlib import Path
from typing import Annotated

import typer
import typer.main
from typer.core import TyperGroup

from lienwatch import __version__
from lienwatch.config import command_line
from lienwatch.errors import LienwatchError

#: Each top-level command and the module of lienwatch.commands whose ``register(app)`` adds it,
#: in the order ``lienwatch --help`` lists them. A module is imported only when one of its
#: commands runs (or for the help), so that a command starts with its own imports, not every
#: command's (sqlalchemy, numpy, httpx, alembic...): ``lienwatch --version`` or a usage error
#: take a fraction of a second. tests/test_cli.py checks this table against the modules.
COMMANDS: dict[str, str] = {
    "demo": "demo",
    "schedule": "servicing",
    "import": "book_import",
    "replay": "replay",
    "gateway": "gateway",
    "simulate-devices": "gateway",
    "decode": "telematics",
    "serve": "serve",
    "worker": "worker",
    "references": "references",
    "report": "report",
    "db": "db",
    "loan": "servicing",
    "servicing": "servicing",
    "payment": "payments",
    "borrower": "corrections",
    "vehicle": "corrections",
    "positions": "positions",
    "device": "devices",
    "followup": "followup",
    "repossession": "repossession",
    "team": "teams",
    "user": "users",
    "ledger": "ledger",
    "contract": "ledger",
    "collateral": "ledger",
    "alert": "alerts",
    "risk": "risk",
}


@cache
def registered(module: str) -> TyperGroup:
    """The commands that ``lienwatch.commands.<module>`` registers, as a click group."""
    commands = typer.Typer(rich_markup_mode="markdown", pretty_exceptions_enable=False)
    importlib.import_module(f"lienwatch.commands.{module}").register(commands)
    return typer.main.get_group(commands)


class _Commands(TyperGroup):
    """The root group: its commands come from their modules when asked for (:data:`COMMANDS`)."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: typer.Context, cmd_name: str):  # click's Command, or None
        module = COMMANDS.get(cmd_name)
        return None if module is None else registered(module).commands.get(cmd_name)


app = typer.Typer(
    name="lienwatch",
    cls=_Commands,
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


#: click's exception types as typer ships them (vendored in newer typer, click's own before).
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


#: New objects between two collections of the youngest generation (Python's default: 700).
#: A command makes rows and ORM objects by the thousand, few of them in cycles; at 700 the
#: collector walked each batch of them many times before it was freed (a tenth of the
#: demo's follow-up stage, docs/benchmarks.md). The older generations keep Python's.
YOUNG_COLLECTION_THRESHOLD = 50_000


def tune_collector() -> None:
    """Set the collector's thresholds every lienwatch process runs with: the youngest
    generation's to ``YOUNG_COLLECTION_THRESHOLD``, the others Python's."""
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def main(args: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit status 1; usage errors
    (a missing option, a bad value refused at the option) one line and status 2. Anything
    else is a bug and keeps its traceback."""
    tune_collector()
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
