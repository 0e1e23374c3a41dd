"""The disclosure pack for regulators (``lienwatch report --disclosure``): the portfolio-quality
and collection-conduct tables as CSV, with a data dictionary naming every column.

Conduct covers the report's follow-up period (:data:`lienwatch.reports.figures.KPI_DAYS` days
up to the report's moment): every contact the compliance guard decided, allowed or refused and
by which rule, cases put on hold for a dispute, complaints received and resolved, and
repossessions by lawful route.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from lienwatch.reports.figures import KPI_DAYS
from lienwatch.services.reads.conduct import (
    complaints_by_category,
    contact_attempts,
    disputes_on_hold,
    portfolio_quality,
    refusals_by_rule,
    repossessions_by_route,
)

FOLDER = "disclosure"

#: table -> [(column, meaning)]: written as data_dictionary.csv.
DICTIONARY: dict[str, list[tuple[str, str]]] = {
    "portfolio_quality": [
        ("product", "product code of the loans"),
        ("bucket", "delinquency bucket in the nightly snapshot of the business day (M0 current, "
                   "M1 1-30 days past due, M2 31-60, ... M7+ over 180)"),
        ("loans", "number of loans"),
        ("outstanding", "outstanding principal, fen (1/100 yuan)"),
        ("ead", "exposure at default, fen"),
        ("unsecured", "exposure at default not covered by the collateral's recoverable value, fen"),
    ],
    "contact_attempts": [
        ("channel", "sms, voice, email, letter, call or visit"),
        ("agency", "who made or would have made the contact"),
        ("attempts", "contacts the compliance guard decided in the period"),
        ("allowed", "of them, allowed"),
        ("refused", "of them, refused by a rule"),
        ("connected", "allowed contacts that reached someone"),
        ("conversations", "allowed contacts that became a conversation"),
    ],
    "refusals_by_rule": [
        ("rule", "the compliance rule that refused the contact (lienwatch.followup.compliance)"),
        ("channel", "the contact's channel"),
        ("refused", "contacts refused in the period"),
    ],
    "disputes": [
        ("hold", "dispute or do_not_contact: a case put on hold (the borrower disputes the debt, "
                 "or asked not to be contacted)"),
        ("cases", "cases opened by the end of the period with that hold now"),
    ],
    "complaints": [
        ("category", "what the complaint is about: harassment, third_party (others told of the "
                     "debt), wrong_amount, privacy, conduct, repossession, other"),
        ("channel", "how it reached the lender: phone, letter, online, in_person, regulator"),
        ("received", "complaints received in the period"),
        ("resolved", "complaints resolved in the period"),
        ("upheld", "of those resolved in the period, found justified"),
        ("open", "complaints received by the end of the period and not resolved by then"),
    ],
    "repossessions_by_route": [
        ("route", "the lawful route: court_order, security_enforcement or negotiated_handover"),
        ("status", "the repossession's state now"),
        ("ordered_in_period", "orders placed in the period"),
        ("orders", "orders placed by the end of the period"),
        ("proceeds", "sale proceeds, fen"),
        ("to_loan", "proceeds paid to the loans after costs, fen"),
        ("deficiency", "balance left on the loans after the sale, fen"),
    ],
}


def write_disclosure(session: Session, *, day: str, at: datetime, out: Path) -> list[Path]:
    """Write the pack into ``out/disclosure/``; returns the files, the dictionary last."""
    since = at - timedelta(days=KPI_DAYS)
    folder = out / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    tables = {
        "portfolio_quality": portfolio_quality(session, day),
        "contact_attempts": contact_attempts(session, since, at),
        "refusals_by_rule": refusals_by_rule(session, since, at),
        "disputes": disputes_on_hold(session, at),
        "complaints": complaints_by_category(session, since, at),
        "repossessions_by_route": repossessions_by_route(session, since, at),
    }
    written = []
    for name, rows in tables.items():
        written.append(_csv(folder / f"{name}.csv", [c for c, _ in DICTIONARY[name]], rows))
    meta = [["(period)", "", f"{since.isoformat()} to {at.isoformat()}; snapshots of {day}"]]
    written.append(_csv(folder / "data_dictionary.csv", ["table", "column", "meaning"],
                        meta + [[t, c, m] for t, cols in DICTIONARY.items() for c, m in cols]))
    return written


def _csv(path: Path, columns: list[str], rows: list[Any]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path
