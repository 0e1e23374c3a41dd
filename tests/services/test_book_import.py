"""Loan book import on SQLite and PostgreSQL: round trip, idempotency, bad rows, quarantine."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import polars
import pytest
from sqlalchemy import func, select

from lienwatch.errors import LienwatchError
from lienwatch.services.book_import import ImportRejected, import_book
from lienwatch.services.ledger import LedgerService, collateral_registrations
from lienwatch.sim import SimConfig, generate, write_portfolio
from lienwatch.store.db import write_deferred
from lienwatch.store.ledger import LedgerRepository
from lienwatch.store.tables import (
    Borrower,
    Device,
    Installment,
    LedgerEntry,
    Loan,
    Payment,
    Vehicle,
)

AT = datetime(2026, 3, 1, 9, tzinfo=UTC)
KINDS = ("borrowers", "vehicles", "devices", "loans", "payments")


@pytest.fixture(scope="module")
def book_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("book")
    portfolio = generate(SimConfig(loans=40, days=14, seed=3))
    paths = write_portfolio(portfolio, folder, positions=False)
    return {kind: paths[kind] for kind in KINDS}


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def rewrite(path: Path, target: Path, change) -> Path:
    """Copy a CSV with ``change(line_number, row)`` applied to each data row."""
    with path.open(encoding="utf-8") as source:
        rows = list(csv.DictReader(source))
    with target.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        for line, row in enumerate(rows, start=2):
            changed = change(line, dict(row))
            if changed is not None:
                writer.writerow(changed)
    return target


@pytest.mark.slow  # 66,000 payments imported twice: seconds per backend; no dates
def test_a_book_of_more_keys_than_a_statement_takes_parameters(db_session, book_files, tmp_path):
    """66,000 payments: more than the 65,535 bind parameters PostgreSQL takes in one statement
    (and the 32,766 of SQLite builds that keep that default), so the keys are looked up in
    more than one ``IN`` list, or in one array on PostgreSQL (a go-live on a book of 20,000
    loans failed so)."""
    with book_files["payments"].open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    many = tmp_path / "payments.csv"
    with many.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        for n in range(66_000):
            row = rows[n % len(rows)]
            writer.writerow(row | {"id": f"{row['id']}-{n}", "amount": "0.01"})
    files = book_files | {"payments": many}
    assert import_book(db_session, at=AT, files=files).imported["payments"] == 66_000
    assert import_book(db_session, at=AT, files=files).unchanged["payments"] == 66_000


def test_round_trip_and_second_import_changes_nothing(db_session, book_files):
    report = import_book(db_session, at=AT, files=book_files)
    with book_files["loans"].open(encoding="utf-8") as handle:
        loans = list(csv.DictReader(handle))
    assert report.imported["loans"] == count(db_session, Loan) == len(loans)
    assert count(db_session, Payment) == report.imported["payments"] > 0
    assert count(db_session, Device) == report.imported["devices"]
    assert report.ignored_columns["borrowers"] == ["work_lat", "work_lon"]
    first = loans[0]
    stored = db_session.scalars(select(Loan).where(Loan.ref == first["ref"])).one()
    assert stored.installments and len(stored.installments) == int(first["term"])
    assert sum(i.principal for i in stored.installments) == stored.principal
    assert str(stored.annual_rate) == first["annual_rate"]
    before = {m.__tablename__: count(db_session, m) for m in (Borrower, Vehicle, Loan, Payment)}
    again = import_book(db_session, at=AT, files=book_files)
    assert sum(again.imported.values()) == 0
    assert again.unchanged["payments"] == report.imported["payments"]
    assert {
        m.__tablename__: count(db_session, m) for m in (Borrower, Vehicle, Loan, Payment)
    } == before
    assert count(db_session, Installment) == sum(int(r["term"]) for r in loans)
    # taken in at the import's moment, whatever the process clock says
    stamps = [*db_session.scalars(select(Borrower.created_at)),
              *db_session.scalars(select(Loan.created_at)),
              *db_session.scalars(select(Payment.received_at))]  # fmt: skip
    assert set(stamps) == {AT}


BAD_LOANS = {
    2: ("principal", "-5.00", "must be positive"),
    3: ("annual_rate", "1.2", "within 0–100 %"),
    4: ("term", "121", "within 1–120"),
    5: ("method", "balloon", "must be one of annuity"),
}


def test_bad_rows_are_named_and_nothing_is_imported(db_session, book_files, tmp_path):
    def spoil(line, row):
        if line in BAD_LOANS:
            column, value, _ = BAD_LOANS[line]
            row[column] = value
        return row

    files = {**book_files, "loans": rewrite(book_files["loans"], tmp_path / "loans.csv", spoil)}
    with pytest.raises(ImportRejected) as info:
        import_book(db_session, at=AT, files=files)
    messages = [str(e) for e in info.value.errors]
    for line, (column, _, reason) in BAD_LOANS.items():
        assert any(
            m.startswith(f"{files['loans']}:{line}: column {column}: ") and reason in m
            for m in messages
        ), (line, messages)
    # their payments are rejected too, naming the loan
    assert any("column loan_ref: unknown loan" in m for m in messages)
    assert count(db_session, Loan) == count(db_session, Borrower) == 0


def test_payment_rules(db_session, book_files, tmp_path):
    import_book(db_session, at=AT, files={k: v for k, v in book_files.items() if k != "payments"})
    with book_files["loans"].open(encoding="utf-8") as handle:
        loan = next(csv.DictReader(handle))
    path = tmp_path / "payments.csv"
    path.write_text(
        "id,loan_ref,date,amount,currency\n"
        f"P1,{loan['ref']},2020-01-01,100.00,CNY\n"
        f"P2,NOPE,2026-10-01,100.00,CNY\n"
        f"P3,{loan['ref']},2026-10-01,100.00,USD\n"
        f"P4,{loan['ref']},2026-10-01,0.00,CNY\n"
        f"P5,{loan['ref']},2026-10-01,1.234,CNY\n"
        f"P6,{loan['ref']},2026-10-01,100.00,CNY\n"
        f"P6,{loan['ref']},2026-10-02,100.00,CNY\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as info:
        import_book(db_session, at=AT, files={"payments": path})
    reasons = {e.line: (e.column, e.reason) for e in info.value.errors}
    assert reasons[2][0] == "date" and "before the loan's disbursement" in reasons[2][1]
    assert reasons[3] == ("loan_ref", "unknown loan 'NOPE'")
    assert reasons[4][0] == "currency" and "USD" in reasons[4][1]
    assert reasons[5][0] == "amount" and "positive" in reasons[5][1]
    assert reasons[6][0] == "amount" and "two decimals" in reasons[6][1]
    assert reasons[8][0] == "id" and "duplicate 'P6' (first on line 7)" in reasons[8][1]
    assert 7 not in reasons
    assert count(db_session, Payment) == 0


def test_quarantine_imports_good_rows_and_writes_the_rest(db_session, book_files, tmp_path):
    victim = None

    def spoil(line, row):
        nonlocal victim
        if line == 3:
            victim = row["ref"]
            row["principal"] = "abc"
        return row

    files = {**book_files, "loans": rewrite(book_files["loans"], tmp_path / "loans.csv", spoil)}
    report = import_book(db_session, at=AT, files=files, quarantine=True)
    assert db_session.scalar(select(Loan).where(Loan.ref == victim)) is None
    assert report.imported["loans"] == count(db_session, Loan) > 0
    side = tmp_path / "loans.rejected.csv"
    assert report.quarantine_files[0] == side
    rows = list(csv.DictReader(side.open(encoding="utf-8")))
    assert [(r["ref"], r["principal"], r["_line"], r["_column"]) for r in rows] == [
        (victim, "abc", "3", "principal")
    ]
    payments_side = book_files["payments"].with_name("payments.rejected.csv")
    rejected_payments = list(csv.DictReader(payments_side.open(encoding="utf-8")))
    assert rejected_payments and {r["loan_ref"] for r in rejected_payments} == {victim}
    payments_side.unlink()


def test_a_changed_row_conflicts_with_the_stored_one(db_session, book_files, tmp_path):
    import_book(db_session, at=AT,
                files={k: book_files[k] for k in ("borrowers", "vehicles", "loans")})
    changed = rewrite(
        book_files["loans"], tmp_path / "loans.csv",
        lambda line, row: {**row, "principal": "99999.00"} if line == 2 else row,
    )  # fmt: skip
    with pytest.raises(ImportRejected, match="already stored with a different principal"):
        import_book(db_session, at=AT, files={"loans": changed})


def test_parquet_and_missing_columns(db_session, book_files, tmp_path):
    frame = polars.read_csv(book_files["borrowers"], infer_schema=False)
    frame.write_parquet(tmp_path / "borrowers.parquet")
    report = import_book(db_session, at=AT, files={"borrowers": tmp_path / "borrowers.parquet"})
    assert report.imported["borrowers"] == frame.height == count(db_session, Borrower)
    frame.drop("phone").write_parquet(tmp_path / "nophone.parquet")
    with pytest.raises(ImportRejected, match="column phone: required column is missing"):
        import_book(db_session, at=AT, files={"borrowers": tmp_path / "nophone.parquet"})


def _second_wired_tracker(book_files, tmp_path) -> tuple[Path, str, str]:
    """A devices file with one new wired tracker on a vehicle that already has one."""
    with book_files["devices"].open(encoding="utf-8") as handle:
        devices = list(csv.DictReader(handle))
    taken = next(d for d in devices if d["kind"] == "wired" and d["vehicle_vin"])
    extra = {**taken, "device_id": "013900000000"}
    target = tmp_path / "devices.csv"
    with target.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(devices[0]))
        writer.writeheader()
        writer.writerow(extra)
    return target, taken["vehicle_vin"], taken["device_id"]


def test_a_second_wired_tracker_on_a_vehicle_is_a_bad_row(db_session, book_files, tmp_path):
    import_book(db_session, at=AT,
                files={k: book_files[k] for k in ("borrowers", "vehicles", "devices")})
    devices, vin, holder = _second_wired_tracker(book_files, tmp_path)
    reason = (f"vehicle {vin!r} already has a wired tracker ({holder!r}); a vehicle carries "
              "one of each kind")  # fmt: skip
    with pytest.raises(ImportRejected) as rejected:
        import_book(db_session, at=AT, files={"devices": devices})
    assert [(e.line, e.column, e.reason) for e in rejected.value.errors] == [
        (2, "vehicle_vin", reason)
    ]
    report = import_book(db_session, at=AT, files={"devices": devices}, quarantine=True)
    assert report.imported["devices"] == 0
    rows = list(csv.DictReader((tmp_path / "devices.rejected.csv").open(encoding="utf-8")))
    assert [(r["device_id"], r["_column"], r["_reason"]) for r in rows] == [
        ("013900000000", "vehicle_vin", reason)
    ]


def test_two_wired_trackers_for_one_vehicle_in_one_file(db_session, book_files, tmp_path):
    import_book(db_session, at=AT, files={k: book_files[k] for k in ("borrowers", "vehicles")})
    with book_files["devices"].open(encoding="utf-8") as handle:
        devices = list(csv.DictReader(handle))
    first = next(d for d in devices if d["kind"] == "wired" and d["vehicle_vin"])
    doubled = tmp_path / "devices.csv"
    with doubled.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(first))
        writer.writeheader()
        writer.writerows([first, {**first, "device_id": "013900000001"}])
    with pytest.raises(ImportRejected, match=r"devices.csv:3: column vehicle_vin: vehicle "):
        import_book(db_session, at=AT, files={"devices": doubled})


def test_a_corrupt_parquet_file_is_one_line(db_session, tmp_path):
    corrupt = tmp_path / "loans.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(LienwatchError, match=r"^\S+loans.parquet: not a readable Parquet file \("):
        import_book(db_session, at=AT, files={"loans": corrupt})
    with pytest.raises(LienwatchError, match=r"missing.csv: no such file$"):
        import_book(db_session, at=AT, files={"loans": tmp_path / "missing.csv"})


def ledger_kinds(session) -> dict[str, int]:
    write_deferred(session)
    rows = session.execute(select(LedgerEntry.kind, func.count()).group_by(LedgerEntry.kind))
    return dict(rows.all())


def test_what_comes_in_is_recorded_in_the_ledger_once(db_session, book_files):
    report = import_book(db_session, at=AT, files=book_files)
    registered = [r for r in collateral_registrations(db_session)]
    released = [r for r in registered if r.released_on is not None]
    assert ledger_kinds(db_session) == {
        "loan_disbursed": report.imported["loans"],
        "payment_posted": report.imported["payments"],
        "collateral_registered": report.imported["loans"],  # the simulator registers every car
        **({"collateral_released": len(released)} if released else {}),
    }
    assert report.registrations == len(registered) + len(released)
    loan = db_session.scalars(select(Loan).order_by(Loan.id)).first()
    entry = json.loads(LedgerRepository(db_session).entries_of(loan.ref)[0].body)
    assert entry["kind"] == "loan_disbursed" and entry["data"]["source"] == "import"
    assert entry["data"]["principal_fen"] == loan.principal
    assert entry["at"] == AT.isoformat()
    before = ledger_kinds(db_session)
    assert import_book(db_session, at=AT, files=book_files).registrations == 0
    assert ledger_kinds(db_session) == before


def test_a_release_added_later_is_recorded_and_a_second_pledge_is_refused(
    db_session, book_files, tmp_path
):
    import_book(db_session, at=AT, files=book_files)
    pledged = next(r for r in collateral_registrations(db_session) if r.released_on is None)

    def release(line, row):
        if row["ref"] == pledged.loan:
            return {**row, "registration_released_on": "2026-11-20"}
        return row

    later = rewrite(book_files["loans"], tmp_path / "loans.csv", release)
    assert import_book(db_session, at=AT, files={"loans": later}).registrations == 1
    assert LedgerService(db_session).collateral_registration(pledged.vin) is None

    def pledge_again(line, row):
        if row["ref"] == pledged.loan:
            return {**row, "registration_certificate": "OTHER-1",
                    "registration_released_on": ""}  # fmt: skip
        return row

    (tmp_path / "again").mkdir()
    again = rewrite(book_files["loans"], tmp_path / "again" / "loans.csv", pledge_again)
    assert import_book(db_session, at=AT, files={"loans": again}).registrations == 1
    taken = rewrite(book_files["loans"], tmp_path / "taken.csv", lambda line, row: {
        **row, "registration_certificate": "THIRD-1", "registration_released_on": ""})
    with pytest.raises(ImportRejected) as info:
        import_book(db_session, at=AT, files={"loans": taken})
    reasons = [e.reason for e in info.value.errors if e.column == "registration_certificate"]
    assert f"vehicle {pledged.vin} is still registered to loan {pledged.loan} (certificate " \
           "OTHER-1); release that registration first" in reasons


def test_a_registration_needs_its_certificate_authority_and_date(db_session, book_files, tmp_path):
    def half(line, row):
        return {**row, "registration_authority": ""} if line == 2 else row

    files = {**book_files, "loans": rewrite(book_files["loans"], tmp_path / "loans.csv", half)}
    with pytest.raises(ImportRejected) as info:
        import_book(db_session, at=AT, files=files)
    first = next(e for e in info.value.errors if e.file == str(files["loans"]))
    assert (first.line, first.column) == (2, "registration_authority")
    assert first.reason.startswith("required with registration_certificate")


def test_payments_keep_who_paid_them(db_session, book_files, tmp_path):
    with book_files["payments"].open(encoding="utf-8") as handle:
        rows = {row["id"]: row for row in csv.DictReader(handle)}
    import_book(db_session, at=AT, files=book_files)
    stored = {p.external_id: p for p in db_session.scalars(select(Payment))}
    assert {(p.payer_account, p.payer_name) for p in stored.values()} == {
        (r["payer_account"], r["payer_name"]) for r in rows.values()}
    # the columns are optional: a bank file without them stores no payer
    first = next(iter(rows))
    path = rewrite(book_files["payments"], tmp_path / "payments.csv",
                   lambda _line, row: {**row, "id": f"{row['id']}-X", "payer_account": "",
                                       "payer_name": ""} if row["id"] == first else None)
    import_book(db_session, at=AT, files={"payments": path})
    again = db_session.scalar(select(Payment).where(Payment.external_id == f"{first}-X"))
    assert (again.payer_account, again.payer_name) == (None, None)


def test_vehicles_keep_their_permitted_area(db_session, book_files, tmp_path):
    with book_files["vehicles"].open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    first = rows[0]["vin"]
    path = tmp_path / "vehicles.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=[*rows[0], "permitted_area"])
        writer.writeheader()
        writer.writerows({**r, "permitted_area": "hangzhou-yard" if r["vin"] == first else ""}
                         for r in rows)  # fmt: skip
    import_book(db_session, at=AT, files={**book_files, "vehicles": path})
    areas = dict(db_session.execute(select(Vehicle.vin, Vehicle.permitted_area)).all())
    assert areas.pop(first) == "hangzhou-yard"
    assert len(areas) == len(rows) - 1 and set(areas.values()) == {None}
