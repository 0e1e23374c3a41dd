"""A book imported with its applications: the loans file's optional columns (the shipped
scorecard's characteristics, or the id of an application decided through the API) keep each
loan's score, grade and attributes for the report's scorecard stability."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event, func, select

from lienwatch.data import german_credit_path
from lienwatch.risk.datasets import GERMAN_CREDIT
from lienwatch.risk.scorecard import fit_scorecard
from lienwatch.services.applications import decide_and_record, german_credit, shipped_scorecard
from lienwatch.services.book_import import ImportRejected, import_book
from lienwatch.services.origination import (
    BOOKED,
    THROUGH_THE_DOOR,
    fit_reference,
    scorecard_id,
    scorecard_stability,
)
from lienwatch.sim import SimConfig, generate, write_portfolio
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import ApplicationRecord, Loan, ScorecardRecord
from tests.services.test_book_import import AT, KINDS
from tests.test_cli import run

with german_credit_path().open(encoding="utf-8") as handle:
    GERMAN = list(csv.DictReader(handle))
CHARACTERISTICS = [c for c in GERMAN[0] if c != "creditability"]


def _example_application() -> dict[str, str]:
    """An application as ``POST /api/v1/applications`` takes it (docs/risk.md's columns)."""
    return {"application_id": "APP-7", "applied_on": "2026-01-05",
            "id_number": "11010519491231002X", "monthly_income": "30000", "monthly_debt": "0",
            "amount": "100000", "term_months": "36", "vin": "LSVAU2180N2183294",
            "vehicle_year": "2025", "price": "150000", "appraisal": "150000",
            **{c: GERMAN[3][c] for c in CHARACTERISTICS}}  # fmt: skip


@pytest.fixture(scope="module")
def book_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("book")
    paths = write_portfolio(generate(SimConfig(loans=20, days=14, seed=3)), folder,
                            positions=False)  # fmt: skip
    return {kind: paths[kind] for kind in KINDS}


def loans_file(book_files: dict[str, Path], path: Path, columns: list[str],
               change: Callable[[int, dict[str, str]], dict[str, str]]) -> Path:  # fmt: skip
    """The book's loans file with ``columns`` added (the German credit row of the same line
    for a characteristic, empty otherwise), then ``change(line, row)``."""
    with book_files["loans"].open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=[*rows[0], *columns])
        writer.writeheader()
        for line, row in enumerate(rows, start=2):
            added = {c: GERMAN[line].get(c, "") for c in columns}
            writer.writerow(change(line, {**row, **added}))
    return path


def test_a_loans_file_with_characteristics_keeps_each_loan_s_application(
    db_session, book_files, tmp_path
):
    decided = decide_and_record(db_session, [_example_application()], at=AT)[0]

    def booked_on_app7(line: int, row: dict[str, str]) -> dict[str, str]:
        if line == 2:  # the first loan: booked on the application decided through the API
            return {**row, **dict.fromkeys(CHARACTERISTICS, ""), "application_id": "APP-7"}
        return row

    loans = loans_file(book_files, tmp_path / "loans.csv", [*CHARACTERISTICS, "application_id"],
                       booked_on_app7)  # fmt: skip
    report = import_book(db_session, at=AT, files={**book_files, "loans": loans})
    card = shipped_scorecard()
    assert report.applications == report.imported["loans"]
    assert set(report.ignored_columns["loans"]) == set(CHARACTERISTICS) - set(card.names)
    stored = {a.ref: a for a in db_session.scalars(select(ApplicationRecord))}
    first = db_session.scalars(select(Loan).order_by(Loan.id).limit(1)).one()
    assert stored["APP-7"].loan_id == first.id and stored["APP-7"].decision == decided.decision
    assert (first.score, first.grade) == (decided.score, decided.grade)
    other = next(a for ref, a in stored.items() if ref != "APP-7")
    loan = db_session.get(Loan, other.loan_id)
    assert other.ref == loan.ref and other.decided_on == loan.disbursed_on
    assert other.decision is None and set(other.attributes) == set(card.names)
    assert (loan.score, loan.grade) == (other.score, other.grade)
    assert all(db_session.scalars(select(Loan.grade)))
    # the book's loans were booked, APP-7 came through the door: the door is watched
    watched = scorecard_stability(db_session, day=stored["APP-7"].decided_on)
    assert (watched["population"], watched["applications"]) == (THROUGH_THE_DOOR, 1)
    again = import_book(db_session, at=AT, files={**book_files, "loans": loans})
    assert sum(again.imported.values()) == 0
    assert len(list(db_session.scalars(select(ApplicationRecord)))) == len(stored)


def test_bad_application_columns_are_named_and_nothing_is_imported(
    db_session, book_files, tmp_path
):
    bad_number = loans_file(
        book_files, tmp_path / "number.csv", CHARACTERISTICS,
        lambda line, row: {**row, "duration_in_month": "long"} if line == 3 else row)
    with pytest.raises(ImportRejected) as caught:
        import_book(db_session, at=AT, files={**book_files, "loans": bad_number})
    assert [str(e) for e in caught.value.errors if e.file == str(bad_number)] == [
        f"{bad_number}:3: column duration_in_month: not a number 'long'"]
    unknown = loans_file(
        book_files, tmp_path / "unknown.csv", ["application_id"],
        lambda line, row: {**row, "application_id": "NOPE" if line == 4 else ""})
    with pytest.raises(ImportRejected) as caught:
        import_book(db_session, at=AT, files={**book_files, "loans": unknown})
    named = [e for e in caught.value.errors if e.file == str(unknown)]
    assert [(e.line, e.column) for e in named] == [(4, "application_id")]
    assert "no application was decided under that id" in named[0].reason
    partial = loans_file(book_files, tmp_path / "partial.csv", ["duration_in_month"],
                         lambda line, row: row)  # fmt: skip
    with pytest.raises(ImportRejected) as caught:
        import_book(db_session, at=AT, files={**book_files, "loans": partial})
    header = [e for e in caught.value.errors if e.file == str(partial)]
    assert {e.line for e in header} == {1}
    assert {e.column for e in header} == set(shipped_scorecard().names) - {"duration_in_month"}
    assert db_session.scalar(select(Loan.id).limit(1)) is None


def test_risk_stability_prints_the_report_s_figures(book_files, tmp_path):
    """``lienwatch risk stability`` on an imported book: the read verb the report calls."""
    url = f"sqlite:///{tmp_path / 'book.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    loans = loans_file(book_files, tmp_path / "loans.csv", CHARACTERISTICS, lambda _, row: row)
    factory = session_factory(engine)
    with transaction(factory) as session:
        import_book(session, at=AT, files={**book_files, "loans": loans})
        day = max(session.scalars(select(ApplicationRecord.decided_on)))
    with transaction(factory) as session:
        expected = scorecard_stability(session, day=day)
    engine.dispose()
    env = {"LIENWATCH_DATABASE_URL": url}
    result = run("risk", "stability", "--as-of", day.isoformat(), "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"as_of": day.isoformat(), **expected}
    before = run("risk", "stability", "--as-of", "2000-01-01", cwd=tmp_path, env=env)
    assert before.returncode == 1
    assert before.stderr.startswith("lienwatch: error: no scored application is stored on or "
                                    "before 2000-01-01")  # fmt: skip


def test_an_imported_book_is_scored_by_the_scorecard_in_force_and_not_mixed_with_the_door(
    db_session, book_files, tmp_path
):
    """The scorecard stored with the book (a demo's origination) scores the imported loans as
    it scores the API's applications; the loans are booked, not decided at the door, so the
    stability watches them only while the scorecard decided no application."""
    data = german_credit()
    half = data.rows(np.arange(1, data.bad.size, 2))
    card = fit_scorecard(half.columns, half.bad, GERMAN_CREDIT)
    in_force = scorecard_id(db_session, card, fit_reference(card, half.columns), at=AT)
    loans = loans_file(book_files, tmp_path / "loans.csv", CHARACTERISTICS, lambda _, row: row)
    import_book(db_session, at=AT, files={**book_files, "loans": loans})
    stored = list(db_session.scalars(select(ApplicationRecord)))
    assert stored and {a.scorecard_id for a in stored} == {in_force}
    assert db_session.scalar(select(func.count()).select_from(ScorecardRecord)) == 1
    day = max(a.decided_on for a in stored)
    booked = scorecard_stability(db_session, day=day)
    recent = [a for a in stored if (day - a.decided_on).days < 90]
    assert (booked["population"], booked["applications"]) == (BOOKED, len(recent))
    application = {**_example_application(), **{name: GERMAN[5][name] for name in card.names}}
    decided = decide_and_record(db_session, [application], at=AT)[0]
    kept = db_session.scalar(select(ApplicationRecord).where(ApplicationRecord.ref == "APP-7"))
    assert (kept.scorecard_id, kept.score) == (in_force, decided.score)
    door = scorecard_stability(db_session, day=kept.decided_on)
    assert (door["population"], door["applications"]) == (THROUGH_THE_DOOR, 1)


def test_an_import_and_a_decision_each_read_the_scorecard_in_force_once(
    db_session, book_files, tmp_path
):
    data = german_credit()
    card = fit_scorecard(data.columns, data.bad, GERMAN_CREDIT)
    scorecard_id(db_session, card, fit_reference(card, data.columns), at=AT)
    reads: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if "scorecards" in statement and "applications" not in statement.split("FROM")[-1]:
            reads.append(statement)

    engine = db_session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        loans = loans_file(book_files, tmp_path / "loans.csv", CHARACTERISTICS,
                           lambda _, row: row)  # fmt: skip
        report = import_book(db_session, at=AT, files={**book_files, "loans": loans})
        assert report.applications > 0
        assert len(reads) == 1, reads  # resolved once, its stored id not looked up by digest
        reads.clear()
        decide_and_record(db_session, [_example_application()], at=AT)
        assert len(reads) == 1, reads
    finally:
        event.remove(engine, "before_cursor_execute", count)
