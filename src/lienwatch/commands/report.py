"""``lienwatch report``: the daily risk warning report (风险预警报告) on the configured
database (docs/report.md)."""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from lienwatch import clock
from lienwatch.commands.options import Json, day_option, time_option
from lienwatch.config import load_settings
from lienwatch.errors import LienwatchError


class Language(StrEnum):
    ZH = "zh"
    EN = "en"


def register(app: typer.Typer) -> None:
    """Add ``report`` to the root ``app``."""
    app.command("report")(report_command)


def report_command(
    as_of: Annotated[
        date | None,
        day_option("--as-of", "Business date", "the last nightly run of a day that has ended"),
    ] = None,
    at: Annotated[
        datetime | None, time_option("--at", "The time the report is made at", "now")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", file_okay=False,
                     help="Folder to write into [default: <[report] out>/<business date>]."),
    ] = None,
    lang: Annotated[
        Language | None, typer.Option("--lang", help="Language [default: [report] lang, zh].")
    ] = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="Also write report.pdf.")] = False,
    disclosure: Annotated[
        bool, typer.Option("--disclosure", help="Also the disclosure pack for regulators "
                           "(CSV with a data dictionary, in disclosure/).")
    ] = False,
    send: Annotated[
        bool, typer.Option("--send", help="Also e-mail it to [report] recipients.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Write the daily risk warning report: report.html (charts inline, self-contained), one
    CSV per table and figures.json; with --pdf report.pdf. Each section says what changed
    since the previous business day's report."""
    from lienwatch.followup.strategy import configured_strategy
    from lienwatch.reports.daily import produce  # heavy imports only when used
    from lienwatch.reports.mail import send_report, summary_text
    from lienwatch.servicing.catalogue import ProductCatalogue
    from lienwatch.store.migrate import open_store
    from lienwatch.workforce.incentives import incentive_scheme
    from lienwatch.workforce.rules import capacity_rules

    settings = load_settings()
    day, now = as_of, at or clock.now()
    language = (lang.value if lang else settings.report.lang)
    strategy = configured_strategy(settings.followup.strategy)  # said before database work
    if send and not settings.report.recipients:
        raise LienwatchError("--send: [report] recipients is empty in the configuration")
    with open_store(settings.database_url) as database:
        written = produce(
            database.factory, out=out or settings.report.out, dated=out is None, strategy=strategy,
            lang=language, as_of=day, now=now, time_zone=settings.time_zone,
            catalogue=ProductCatalogue.from_tables(settings.products), pdf=pdf,
            disclosure=disclosure, ledger_key=settings.ledger.key_file,
            rules=capacity_rules(settings.workforce.capacity_rules),
            scheme=incentive_scheme(settings.workforce.incentives),
        )  # fmt: skip
    if send:
        relay = settings.followup
        send_report(written, recipients=settings.report.recipients, lang=language,
                    host=relay.smtp_host, port=relay.smtp_port,
                    sender=relay.email_sender)  # fmt: skip
    if as_json:
        typer.echo(json.dumps(written.figures, indent=2, ensure_ascii=False))
        return
    typer.echo(summary_text(written.figures, language), nl=False)
    typer.echo(f"\nwrote {written.html} ({len(written.csv)} CSV files in tables/ beside it"
               f"{', ' + written.pdf.name if written.pdf else ''})")  # fmt: skip
    if written.disclosure:
        typer.echo(f"wrote the disclosure pack in {written.disclosure[0].parent} "
                   f"({len(written.disclosure)} CSV files, data_dictionary.csv last)")
    if send:
        typer.echo(f"sent to {', '.join(settings.report.recipients)}")
