"""Loan book import on SQLite and PostgreSQL: round trip, idempotency, bad rows, quarantine."""

from __future__ import annotations

import csv
from pathlib import Path

import polars
import pytest
from sqlalchemy import func, select

from lienwatch.errors import LienwatchError
from lienwatch.sim import SimConfig, generate, write_portfolio
from lienwatch.store.book_import import ImportRejected, import_book
from lienwatch.store.tables import Borrower, Device, Installment, Loan, Payment, Vehicle

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


def test_round_trip_and_second_import_changes_nothing(db_session, book_files):
    report = import_book(db_session, book_files)
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
    again = import_book(db_session, book_files)
    assert sum(again.imported.values()) == 0
    assert again.unchanged["payments"] == report.imported["payments"]
    assert {
        m.__tablename__: count(db_session, m) for m in (Borrower, Vehicle, Loan, Payment)
    } == before
    assert count(db_session, Installment) == sum(int(r["term"]) for r in loans)


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
        import_book(db_session, files)
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
    import_book(db_session, {k: v for k, v in book_files.items() if k != "payments"})
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
        import_book(db_session, {"payments": path})
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
    report = import_book(db_session, files, quarantine=True)
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
    import_book(db_session, {k: book_files[k] for k in ("borrowers", "vehicles", "loans")})
    changed = rewrite(
        book_files["loans"], tmp_path / "loans.csv",
        lambda line, row: {**row, "principal": "99999.00"} if line == 2 else row,
    )  # fmt: skip
    with pytest.raises(ImportRejected, match="already stored with a different principal"):
        import_book(db_session, {"loans": changed})


def test_parquet_and_missing_columns(db_session, book_files, tmp_path):
    frame = polars.read_csv(book_files["borrowers"], infer_schema=False)
    frame.write_parquet(tmp_path / "borrowers.parquet")
    report = import_book(db_session, {"borrowers": tmp_path / "borrowers.parquet"})
    assert report.imported["borrowers"] == frame.height == count(db_session, Borrower)
    frame.drop("phone").write_parquet(tmp_path / "nophone.parquet")
    with pytest.raises(ImportRejected, match="column phone: required column is missing"):
        import_book(db_session, {"borrowers": tmp_path / "nophone.parquet"})


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
    import_book(db_session, {k: book_files[k] for k in ("borrowers", "vehicles", "devices")})
    devices, vin, holder = _second_wired_tracker(book_files, tmp_path)
    reason = (f"vehicle {vin!r} already has a wired tracker ({holder!r}); a vehicle carries "
              "one of each kind")  # fmt: skip
    with pytest.raises(ImportRejected) as rejected:
        import_book(db_session, {"devices": devices})
    assert [(e.line, e.column, e.reason) for e in rejected.value.errors] == [
        (2, "vehicle_vin", reason)
    ]
    report = import_book(db_session, {"devices": devices}, quarantine=True)
    assert report.imported["devices"] == 0
    rows = list(csv.DictReader((tmp_path / "devices.rejected.csv").open(encoding="utf-8")))
    assert [(r["device_id"], r["_column"], r["_reason"]) for r in rows] == [
        ("013900000000", "vehicle_vin", reason)
    ]


def test_two_wired_trackers_for_one_vehicle_in_one_file(db_session, book_files, tmp_path):
    import_book(db_session, {k: book_files[k] for k in ("borrowers", "vehicles")})
    with book_files["devices"].open(encoding="utf-8") as handle:
        devices = list(csv.DictReader(handle))
    first = next(d for d in devices if d["kind"] == "wired" and d["vehicle_vin"])
    doubled = tmp_path / "devices.csv"
    with doubled.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(first))
        writer.writeheader()
        writer.writerows([first, {**first, "device_id": "013900000001"}])
    with pytest.raises(ImportRejected, match=r"devices.csv:3: column vehicle_vin: vehicle "):
        import_book(db_session, {"devices": doubled})


def test_a_corrupt_parquet_file_is_one_line(db_session, tmp_path):
    corrupt = tmp_path / "loans.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(LienwatchError, match=r"^\S+loans.parquet: not a readable Parquet file \("):
        import_book(db_session, {"loans": corrupt})
    with pytest.raises(LienwatchError, match=r"missing.csv: no such file$"):
        import_book(db_session, {"loans": tmp_path / "missing.csv"})
