"""Importing a lender's book from CSV or Parquet files: the go-live use case.

Rows are validated (:mod:`lienwatch.servicing.book_import`), then compared with the store
(:mod:`lienwatch.store.book_import`): new rows are inserted, rows already stored with the same
values are left alone (so importing a file twice changes nothing), and rows that contradict
what is stored are errors. By default a single bad row imports nothing; with ``quarantine``
the good rows are imported and the bad ones are written, with their reasons, to a
``.rejected.csv`` file beside their source.

What the import brings in is recorded in the ledger in the same transaction, as any act is:
each new loan's terms (``loan_disbursed``), each new payment (``payment_posted``) and each
mortgage registration and release the loans file carries (``collateral_registered``,
``collateral_released``), all marked ``"source": "import"``.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.errors import LienwatchError
from lienwatch.ledger.collateral import Registration, registered_data, released_data
from lienwatch.ledger.entries import EntryKind
from lienwatch.services.applications import (
    InForce,
    application_columns,
    carries_applications,
    imported_application_errors,
    record_imported_applications,
    scorecard_in_force,
)
from lienwatch.services.ledger import collateral_registrations, record, require_user
from lienwatch.services.payments import posted_entry
from lienwatch.servicing.book_import import (
    KINDS,
    Row,
    RowError,
    check_header,
    check_references,
    parse_row,
)
from lienwatch.store.book_import import apply_import, known_references, plan_import
from lienwatch.store.tables import Vehicle
from lienwatch.tabular import csv_rows, is_parquet, parquet_frame

IMPORTED = {"source": "import"}


class ImportRejected(LienwatchError):
    """An import with bad rows and no quarantine: nothing was imported."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        shown = "; ".join(str(e) for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        super().__init__(f"{len(errors)} bad rows, nothing imported: {shown}{more}")


@dataclass(frozen=True, slots=True)
class ImportReport:
    imported: dict[str, int]
    unchanged: dict[str, int]
    rejected: list[RowError]
    ignored_columns: dict[str, list[str]]
    quarantine_files: list[Path]
    registrations: int = 0  # mortgage registrations (and releases) recorded
    applications: int = 0  # loans linked to their scored application (docs/store.md)


def read_table(path: Path) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """A CSV (UTF-8, header on line 1) or Parquet file as its header and (line, row) pairs."""
    if is_parquet(path):
        frame = parquet_frame(path)
        return frame.columns, list(enumerate(frame.to_dicts(), start=1))
    header, rows = csv_rows(path)
    return header, list(rows)


def import_book(
    session: Session, files: Mapping[str, Path], *, at: datetime, by: str | None = None,
    quarantine: bool = False,
) -> ImportReport:  # fmt: skip
    """Validate every row of ``files`` (kind -> path) and import them in the caller's
    transaction, recorded in the ledger at ``at`` by ``by`` (None: the system); raise
    :class:`ImportRejected` for bad rows unless ``quarantine``."""
    if by is not None:
        require_user(session, by)
    unknown_kinds = set(files) - set(KINDS)
    if unknown_kinds:
        raise LienwatchError(f"unknown file kinds: {', '.join(sorted(unknown_kinds))}")
    parsed: dict[str, list[Row]] = {}
    errors: list[RowError] = []
    ignored: dict[str, list[str]] = {}
    sources: dict[str, tuple[Path, list[str]]] = {}
    scorecard: InForce | None = None
    for kind, path in files.items():
        header, rows = read_table(Path(path))
        sources[kind] = (Path(path), header)
        header_errors, ignored[kind] = check_header(kind, str(path), header)
        if kind == "loans" and carries_applications(header):
            scorecard = scorecard_in_force(session)  # once: the import's columns and scores
            known, missing = application_columns(scorecard, header)
            ignored[kind] = [c for c in ignored[kind] if c not in known]
            header_errors += [RowError(str(path), 1, c, "required with the scorecard's other "
                                       "characteristics (docs/store.md)") for c in missing]
        errors.extend(header_errors)
        if header_errors:
            continue
        parsed[kind] = []
        for line, raw in rows:
            result = parse_row(kind, str(path), line, raw)
            (errors if isinstance(result, RowError) else parsed[kind]).append(result)
    accepted, reference_errors = check_references(parsed, known_references(session))
    errors.extend(reference_errors)
    pledges, pledge_errors = _new_registrations(session, accepted["loans"])
    if scorecard is not None:
        pledge_errors += imported_application_errors(session, scorecard, accepted["loans"])
    accepted = _without_rejected(accepted, pledge_errors)
    errors.extend(pledge_errors)
    plan = plan_import(session, accepted)
    errors.extend(plan.errors)
    errors.sort(key=lambda e: (e.file, e.line))
    if errors and not quarantine:
        raise ImportRejected(errors)
    conflicting = {(e.file, e.line) for e in plan.errors}
    pledges = [p for p in pledges if (p.row.file, p.row.line) not in conflicting]
    imported = apply_import(session, plan, at=at)
    for row in plan.new["loans"]:
        record(session, EntryKind.LOAN_DISBURSED, subject=row.key, at=at, by=by,
               data=_disbursed_entry(row.values))  # fmt: skip
    for row in plan.new["payments"]:
        v = row.values
        record(session, EntryKind.PAYMENT_POSTED, subject=v["loan_ref"], at=at, by=by,
               data={**posted_entry(external_id=v["id"], amount=v["amount"], paid_on=v["date"],
                                    channel=v["channel"]), **IMPORTED})  # fmt: skip
    recorded = _record_registrations(session, pledges, at=at, by=by)
    loans = [row for row in accepted["loans"] if (row.file, row.line) not in conflicting]
    linked = (record_imported_applications(session, scorecard, loans, at=at)
              if scorecard is not None and "loans" in parsed else 0)  # fmt: skip
    written = _write_quarantine(errors, sources) if errors else []
    return ImportReport(imported, plan.unchanged, errors, ignored, written, recorded, linked)


def _disbursed_entry(v: Mapping[str, Any]) -> dict[str, Any]:
    """The ledger facts of an imported loan row's terms."""
    return {
        "borrower": v["borrower_ref"], "vehicle": v["vehicle_vin"], "product": v["product"],
        "principal_fen": v["principal"], "annual_rate": str(v["annual_rate"]), "term": v["term"],
        "method": v["method"], "day_count": v["day_count"],
        "disbursed_on": v["disbursed_on"].isoformat(), "upfront_fee_fen": v["upfront_fee"],
        "fee_financed": v["fee_financed"], **IMPORTED,
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Pledge:
    """A registration (and maybe its release) a loans row carries that the ledger lacks."""

    row: Row
    register: bool  # False: registered already, only its release is new


def _new_registrations(
    session: Session, loans: list[Row]
) -> tuple[list[_Pledge], list[RowError]]:
    """The registrations of ``loans`` rows not yet in the ledger (a row imported again adds
    nothing; a release added to it later is recorded), and the rows whose vehicle is pledged
    to another registration still in force."""
    rows = [row for row in loans if row.values["registration_certificate"] is not None]
    if not rows:
        return [], []
    by_vin: dict[str, list[Registration]] = {}
    for registration in collateral_registrations(session):
        by_vin.setdefault(registration.vin, []).append(registration)
    pledges, errors = [], []
    for row in rows:
        vin, certificate = row.values["vehicle_vin"], row.values["registration_certificate"]
        known = by_vin.get(vin, [])
        same = [r for r in known if r.certificate == certificate]
        if same:
            if row.values["registration_released_on"] and same[-1].released_on is None:
                pledges.append(_Pledge(row, register=False))
            continue
        holder = next((r for r in known if r.released_on is None), None)
        if holder is not None:
            errors.append(RowError(
                row.file, row.line, "registration_certificate",
                f"vehicle {vin} is still registered to loan {holder.loan} (certificate "
                f"{holder.certificate}); release that registration first", row.raw,
            ))  # fmt: skip
            continue
        pledges.append(_Pledge(row, register=True))
    return pledges, errors


def _without_rejected(
    rows: dict[str, list[Row]], rejected: list[RowError]
) -> dict[str, list[Row]]:
    """``rows`` less the loans ``rejected`` names and their payments (each payment left out
    is added to ``rejected``, naming its loan)."""
    if not rejected:
        return rows
    lines = {(e.file, e.line) for e in rejected}
    dropped = {row.key for row in rows["loans"] if (row.file, row.line) in lines}
    payments = []
    for row in rows["payments"]:
        if row.values["loan_ref"] in dropped:
            rejected.append(RowError(row.file, row.line, "loan_ref",
                                     f"loan {row.values['loan_ref']!r} was rejected", row.raw))
        else:
            payments.append(row)
    loans = [row for row in rows["loans"] if row.key not in dropped]
    return {**rows, "loans": loans, "payments": payments}


def _record_registrations(
    session: Session, pledges: list[_Pledge], *, at: datetime, by: str | None
) -> int:
    if not pledges:
        return 0
    plates = dict(session.execute(select(Vehicle.vin, Vehicle.plate)).all())
    recorded = 0
    for pledge in pledges:
        v = pledge.row.values
        vin = v["vehicle_vin"]
        if pledge.register:
            data = registered_data(loan=pledge.row.key, plate=plates[vin],
                                   authority=v["registration_authority"],
                                   certificate=v["registration_certificate"],
                                   registered_on=v["registered_on"])  # fmt: skip
            record(session, EntryKind.COLLATERAL_REGISTERED, subject=vin, at=at, by=by,
                   data={**data, **IMPORTED})
            recorded += 1
        if v["registration_released_on"] is not None:
            data = released_data(released_on=v["registration_released_on"],
                                 certificate=v["registration_certificate"])
            record(session, EntryKind.COLLATERAL_RELEASED, subject=vin, at=at, by=by,
                   data={**data, **IMPORTED})
            recorded += 1
    return recorded


def _write_quarantine(
    errors: list[RowError], sources: Mapping[str, tuple[Path, list[str]]]
) -> list[Path]:
    written = []
    for path, header in sources.values():
        mine = [e for e in errors if e.file == str(path)]
        if not mine:
            continue
        target = path.with_name(path.stem + ".rejected.csv")
        with target.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([*header, "_line", "_column", "_reason"])
            for e in mine:
                writer.writerow([*(e.row.get(c, "") for c in header), e.line, e.column, e.reason])
        written.append(target)
    return written
