"""The report's models section on a small book of both backends: grades against outcome,
the grade mix's PSI, the behaviour score or why not, abnormal payments, rings."""

from __future__ import annotations

from datetime import UTC, date, datetime

from lienwatch.reports.models import grades_against_outcome, models_figures
from lienwatch.services.payment_anomalies import scan_payments
from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.repositories import PaymentRepository
from tests import factories

DAY = date(2026, 11, 30)
AT = datetime(2026, 12, 1, 2, tzinfo=UTC)


def test_the_models_section_reads_grades_outcomes_anomalies_and_rings(db_session):
    """Four graded loans: an old A that paid, an old E that never paid (defaulted), a new A
    and a new B; every factory borrower shares one phone, so they form one ring."""
    loans = {}
    for ref, grade, disbursed in (("M1", "A", date(2026, 1, 15)), ("M2", "E", date(2026, 1, 15)),
                                  ("M3", "A", date(2026, 10, 15)), ("M4", "B", date(2026, 10, 15))):
        loan = factories.loan(db_session, ref, disbursed_on=disbursed)
        loan.grade, loan.score = grade, 600
        loans[ref] = loan
    payments = PaymentRepository(db_session)
    for n, due in enumerate(i.due_date for i in loans["M1"].installments):
        if due <= DAY:
            payments.record(loan=loans["M1"], external_id=f"M1-{n}", paid_on=due, amount=874_490)
    payments.record(loan=loans["M1"], external_id="M1-cash", paid_on=DAY, amount=2_000_000,
                    channel="cash")  # fmt: skip
    run_nightly(db_session, ProductCatalogue(), as_of=DAY)
    scan_payments(db_session, since=DAY, through=DAY, at=AT)
    figures = models_figures(db_session, day=DAY, since=None, at=AT)
    assert [(r["grade"], r["loans"], r["defaulted"]) for r in figures["grades"]] == [
        ("A", 2, 0), ("B", 1, 0), ("E", 1, 1)]
    assert figures["grades"][2]["default_rate"] == 1.0
    stability = figures["stability"]
    assert stability["reference"] == {"A": 1, "B": 0, "C": 0, "D": 0, "E": 1}
    assert stability["recent"] == {"A": 1, "B": 1, "C": 0, "D": 0, "E": 0}
    assert stability["psi"] > 0.25  # a new book of another mix
    assert figures["behaviour"] == {"available": False, "why": figures["behaviour"]["why"]}
    assert "the book has" in figures["behaviour"]["why"]
    assert figures["payment_anomalies"] == {"open": 1, "new": 1}
    assert (figures["rings"]["candidate_rings"], figures["rings"]["borrowers"]) == (1, 4)
    assert grades_against_outcome(db_session, date(2026, 2, 1))[0]["loans"] == 1  # M3 not yet
