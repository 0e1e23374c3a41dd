"""Roll rates, cure rates and vintage curves: on hand-built month-end snapshots, and read
from the store after real nightly runs (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import pytest

from lienwatch.reports.credit_quality import roll_rates, vintage_curves
from lienwatch.services.followup import rates
from lienwatch.services.reads.portfolio import MonthEnd, month_end_snapshots
from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.repositories import PaymentRepository
from tests import factories

DEC, JAN, FEB, APR = date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1), date(2026, 4, 1)


def row(loan, month, bucket, outstanding, dpd=0, disbursed=date(2025, 6, 1), principal=0):
    return MonthEnd(loan, month, bucket, dpd, outstanding, disbursed, principal)


def test_roll_and_cure_rates_follow_the_balance_a_month_later():
    rows = [
        row(1, DEC, "M0", 100), row(1, JAN, "M1", 90),  # rolled
        row(2, DEC, "M1", 200), row(2, JAN, "M2", 190),  # rolled
        row(3, DEC, "M1", 300), row(3, JAN, "M0", 280),  # cured
        row(4, DEC, "M2", 400), row(4, JAN, "M2", 400),  # stayed
        row(5, DEC, "M7+", 500), row(5, JAN, "M7+", 500),
        row(6, DEC, "M1", 999),  # no snapshot a month later: not counted
        row(4, APR, "M3", 400),  # February and March missing: no rates for January
    ]  # fmt: skip
    rates = {(r.month, r.bucket): r for r in roll_rates(rows)}
    assert {month for month, _ in rates} == {DEC}
    m0, m1, m2, m7 = (rates[DEC, b] for b in ("M0", "M1", "M2", "M7+"))
    assert (m0.loans, m0.balance, m0.roll_rate, m0.cure_rate) == (1, 100, 1.0, 0.0)
    assert (m1.loans, m1.balance, m1.rolled, m1.cured) == (2, 500, 200, 300)
    assert (m1.roll_rate, m1.cure_rate) == (0.4, 0.6)
    assert (m2.roll_rate, m2.cure_rate, m7.roll_rate) == (0.0, 0.0, 0.0)
    assert rates[DEC, "M3"].balance == 0 and rates[DEC, "M3"].roll_rate is None


def test_custom_bucket_order_and_unknown_buckets():
    rows = [row(1, DEC, "current", 100), row(1, JAN, "late", 100)]
    (current, late) = roll_rates(rows, buckets=("current", "late"))
    assert current.roll_rate == 1.0 and late.balance == 0
    with pytest.raises(ValueError, match=r"^bucket: 'current' is not one of M0"):
        roll_rates(rows)


def test_vintage_curves_by_months_on_book():
    a, b, c = (1, date(2026, 1, 10), 1_000), (2, date(2026, 1, 20), 3_000), (3, FEB, 2_000)
    mar = date(2026, 3, 1)
    rows = [
        MonthEnd(a[0], JAN, "M0", 0, 1_000, a[1], a[2]),
        MonthEnd(b[0], JAN, "M0", 0, 3_000, b[1], b[2]),
        MonthEnd(a[0], FEB, "M0", 0, 950, a[1], a[2]),
        MonthEnd(b[0], FEB, "M2", 35, 2_900, b[1], b[2]),
        MonthEnd(a[0], mar, "M4", 95, 900, a[1], a[2]),
        MonthEnd(b[0], mar, "M0", 0, 2_800, b[1], b[2]),
        MonthEnd(c[0], FEB, "M0", 0, 2_000, c[1], c[2]),
        MonthEnd(c[0], mar, "M2", 40, 1_900, c[1], c[2]),
    ]
    curve = {(p.vintage, p.months_on_book): p for p in vintage_curves(rows)}
    assert sorted(curve) == [(JAN, 0), (JAN, 1), (JAN, 2), (FEB, 0), (FEB, 1)]
    assert (curve[JAN, 0].loans, curve[JAN, 0].disbursed, curve[JAN, 0].dpd30_share) == (
        2, 4_000, 0.0)
    assert (curve[JAN, 1].dpd30_balance, curve[JAN, 1].dpd90_balance) == (2_900, 0)
    assert (curve[JAN, 2].dpd30_balance, curve[JAN, 2].dpd90_balance) == (900, 900)
    assert curve[JAN, 2].dpd90_share == 900 / 4_000
    assert curve[FEB, 1].dpd30_share == 1_900 / 2_000


def test_month_ends_from_stored_nightly_runs(db_session):
    catalogue = ProductCatalogue.from_tables({"default": {"grace_days": 3}})
    good, late = factories.loan(db_session, "L-good"), factories.loan(db_session, "L-late")
    payments = PaymentRepository(db_session)
    for loan, paid in ((good, good.installments[:4]), (late, late.installments[:1])):
        for installment in paid:
            payments.record(loan=loan, external_id=f"{loan.ref}-{installment.n}",
                            paid_on=installment.due_date,
                            amount=installment.principal + installment.interest)  # fmt: skip
    days = (date(2026, 2, 10), date(2026, 2, 27), date(2026, 3, 5), date(2026, 3, 31),
            date(2026, 4, 30))  # fmt: skip
    for day in days:
        run_nightly(db_session, catalogue, as_of=day)
    rows = month_end_snapshots(db_session, start=date(2026, 2, 1), end=date(2026, 4, 30))
    got = {(r.loan, r.month): (r.bucket, r.dpd) for r in rows}
    assert got == {
        (good.id, FEB): ("M0", 0), (good.id, date(2026, 3, 1)): ("M0", 0),
        (good.id, APR): ("M0", 0),
        (late.id, FEB): ("M0", 0), (late.id, date(2026, 3, 1)): ("M1", 13),
        (late.id, APR): ("M2", 43),
    }  # fmt: skip
    rates = {(r.month, r.bucket): r for r in roll_rates(rows)}
    assert rates[FEB, "M0"].roll_rate == pytest.approx(
        rates[FEB, "M0"].rolled / rates[FEB, "M0"].balance)
    assert rates[FEB, "M0"].rolled == next(
        r.outstanding for r in rows if (r.loan, r.month) == (late.id, FEB))
    assert rates[date(2026, 3, 1), "M1"].roll_rate == 1.0
    assert [(p.months_on_book, p.dpd30_balance > 0) for p in vintage_curves(rows)] == [
        (1, False), (2, False), (3, True)]


def test_the_follow_up_kpis_roll_and_cure_as_the_report_does(db_session):
    """One definition: the KPIs' rates between two month-end runs are the report's rates of
    that month (both from lienwatch.domain.rolls)."""
    catalogue = ProductCatalogue.from_tables({"default": {"grace_days": 3}})
    loans = [factories.loan(db_session, f"L-{n}") for n in range(4)]
    payments = PaymentRepository(db_session)
    for n, loan in enumerate(loans):  # 0: pays nothing late … 3: pays up to date
        for installment in loan.installments[: n + 1]:
            payments.record(loan=loan, external_id=f"{loan.ref}-{installment.n}",
                            paid_on=installment.due_date,
                            amount=installment.principal + installment.interest)  # fmt: skip
    cured = loans[0]  # pays its arrears in April: back to current at the end of April
    owed = sum(i.principal + i.interest for i in cured.installments[1:4])
    payments.record(loan=cured, external_id="catch-up", paid_on=date(2026, 4, 20), amount=owed)
    for day in (date(2026, 3, 31), date(2026, 4, 30)):
        run_nightly(db_session, catalogue, as_of=day)
    rows = month_end_snapshots(db_session, start=date(2026, 3, 1), end=date(2026, 4, 30))
    report = {r.bucket: r for r in roll_rates(rows) if r.loans}
    kpis = rates.roll_rates(db_session, date(2026, 3, 31), date(2026, 4, 30), catalogue)
    assert kpis["by_bucket"] == {b: round(r.roll_rate, 4) for b, r in report.items()}
    assert kpis["cure_by_bucket"] == {b: round(r.cure_rate, 4) for b, r in report.items()
                                      if b != "M0"}  # fmt: skip
    assert any(r.cured for r in report.values()) and any(r.rolled for r in report.values())
