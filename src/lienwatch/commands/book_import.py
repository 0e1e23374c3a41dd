"""`lienwatch import`: bring a lender's existing book into the configured database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lienwatch import clock
from lienwatch.commands.common import store_session
from lienwatch.commands.options import Json
from lienwatch.errors import LienwatchError
from lienwatch.services.book_import import ImportRejected, import_book
from lienwatch.tabular import require_file

FileOption = Annotated[Path | None, typer.Option(dir_okay=False, help="CSV or Parquet file.")]


def import_command(
    loans: FileOption = None,
    payments: FileOption = None,
    borrowers: FileOption = None,
    vehicles: FileOption = None,
    devices: FileOption = None,
    quarantine: Annotated[
        bool,
        typer.Option(help="Import the good rows; write bad ones to NAME.rejected.csv."),
    ] = False,
    by: Annotated[str | None, typer.Option(
        "--by", metavar="USER", help="Username of the user bringing the book in.")] = None,
    as_json: Json = False,
) -> None:
    """Validate and import a loan book (columns: docs/servicing.md). By default a file with
    any bad row imports nothing; importing the same files twice changes nothing. What comes
    in (loans, payments, mortgage registrations) is recorded in the ledger."""
    files = {
        kind: path
        for kind, path in {
            "borrowers": borrowers, "vehicles": vehicles, "devices": devices,
            "loans": loans, "payments": payments,
        }.items()
        if path is not None
    }  # fmt: skip
    if not files:
        raise LienwatchError("import: give at least one of --loans, --payments, --borrowers, "
                             "--vehicles, --devices")  # fmt: skip
    for kind, path in files.items():  # before the database is opened (or created)
        require_file(path, f"--{kind}")
    try:
        with store_session() as (_settings, session):
            report = import_book(session, files, at=clock.now(), by=by, quarantine=quarantine)
    except ImportRejected as rejected:
        for error in rejected.errors:
            typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps({
            "imported": report.imported, "unchanged": report.unchanged,
            "rejected": [
                {"file": e.file, "line": e.line, "column": e.column, "reason": e.reason}
                for e in report.rejected
            ],
            "ignored_columns": report.ignored_columns,
            "quarantine_files": [str(p) for p in report.quarantine_files],
            "registrations": report.registrations,
            "applications": report.applications,
        }, ensure_ascii=False))  # fmt: skip
        return
    for kind in files:
        typer.echo(
            f"{kind}: {report.imported[kind]} imported, {report.unchanged[kind]} unchanged"
            + (f" (ignored columns: {', '.join(report.ignored_columns[kind])})"
               if report.ignored_columns.get(kind) else "")
        )  # fmt: skip
    if report.registrations:
        typer.echo(f"mortgage registrations and releases recorded: {report.registrations}")
    if report.applications:
        typer.echo(f"loans with their scored application: {report.applications}")
    for path in report.quarantine_files:
        typer.echo(f"rejected rows written to {path}")


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
