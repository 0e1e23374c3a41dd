from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lienwatch.domain.allocation import Waterfall
from lienwatch.domain.collateral import Appraisal, VehicleClass
from lienwatch.domain.delinquency import BucketScheme, LoanStatus
from lienwatch.domain.schedule import DayCount, Method
from lienwatch.servicing.engine import loan_exposure, loan_state
from lienwatch.servicing.portfolio import (
    STATUS_CODES,
    LoanBook,
    PaymentArrays,
    day_number,
    run_portfolio,
)
from lienwatch.servicing.product import Collateral, LoanTerms, Overpayment, Payment, Product

PRODUCTS = (
    Product(),
    Product(
        name="strict", late_fee=5_000, tolerance=0, penalty_multiple=Fraction(2), charge_off_dpd=90
    ),
    Product(
        name="lenient",
        grace_days=5,
        late_fee=2_000,
        tolerance=1_000,
        waterfall=Waterfall.parse("interest,principal,fee,penalty"),
        buckets=BucketScheme.from_bounds(["current", "late", "default"], [0, 89]),
        recovery_rate=Fraction(1, 2),
    ),
    # re-amortizing prepayments: the run hands these loans to the exact path
    Product(name="prepay", late_fee=1_000, overpayment=Overpayment.REDUCE_INSTALLMENT),
    Product(name="shorten", grace_days=2, overpayment=Overpayment.REDUCE_TERM),
    # a payment of the payoff quote is allocated like any other
    Product(name="no-payoff", late_fee=1_000, settle_at_payoff=False),
)


@st.composite
def loans(draw, index: int):
    start = draw(st.dates(date(2023, 1, 1), date(2025, 12, 31)))
    terms = LoanTerms(
        f"L{index}",
        draw(st.integers(10_000, 50_000_000)),
        Decimal(draw(st.integers(0, 3_600))) / 10_000,
        draw(st.sampled_from([1, 2, 6, 12, 36])),
        draw(st.sampled_from(Method)),
        start,
        day_count=draw(st.sampled_from(DayCount)),
    )
    rows = terms.schedule()
    payments = []
    for row in rows:
        kind = draw(st.sampled_from(["on time", "late", "short", "skip", "lump"]))
        if kind == "skip":
            continue
        day = row.due_date + timedelta(
            days={"on time": draw(st.integers(-5, 0)), "late": draw(st.integers(1, 70))}.get(
                kind, 0
            )
        )
        amount = {"short": row.payment // 2, "lump": row.payment * draw(st.integers(2, 4))}.get(
            kind, row.payment
        )
        payments.append(Payment(f"{index}-{row.n}", max(day, start), max(amount, 1)))
    product = draw(st.integers(0, len(PRODUCTS) - 1))
    if draw(st.booleans()):  # early payoff: the quote of a day, or a fen short of it
        day = start + timedelta(days=draw(st.integers(0, (rows[-1].due_date - start).days + 5)))
        quote = loan_state(terms, PRODUCTS[product], payments, day).payoff_amount
        amount = quote + draw(st.sampled_from([-1, 0, 0, 300]))
        if amount > 0:
            payments.append(Payment(f"{index}-payoff", day, amount))
    vehicle = Collateral(
        draw(st.integers(100_000, 60_000_000)),
        start - timedelta(days=draw(st.integers(0, 800))),
        draw(st.sampled_from(VehicleClass)),
    )
    return terms, payments, vehicle, product


@st.composite
def portfolios(draw):
    size = draw(st.integers(1, 12))
    return [draw(loans(i)) for i in range(size)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(portfolios(), st.integers(0, 1_500), st.integers(1, 5), st.data())
def test_vectorized_run_equals_the_exact_path_on_every_loan(book_loans, days, chunk, data):
    as_of = max(t.start for t, *_ in book_loans) + timedelta(days=days)
    book = LoanBook.from_loans(
        [t for t, *_ in book_loans],
        [v for *_, v, _ in book_loans],
        PRODUCTS,
        [p for *_, p in book_loans],
    )
    appraisals = [
        data.draw(
            st.one_of(
                st.none(),
                st.builds(Appraisal, st.dates(t.start, as_of), st.integers(0, 40_000_000)),
            )
        )
        for t, *_ in book_loans
    ]
    result = run_portfolio(
        book,
        PaymentArrays.from_payments([p for _, p, *_ in book_loans]),
        as_of,
        appraisal_value=np.array([-1 if a is None else a.value for a in appraisals]),
        appraisal_day=np.array([-1 if a is None else day_number(a.on) for a in appraisals]),
        chunk_loans=chunk,
    )
    for i, (terms, payments, vehicle, product) in enumerate(book_loans):
        exact = loan_state(terms, PRODUCTS[product], payments, as_of)
        assert result.state(book, i) == exact
        expected = loan_exposure(
            exact, PRODUCTS[product], vehicle, [] if appraisals[i] is None else [appraisals[i]]
        )
        got = (
            result.collateral_value[i],
            result.ead[i],
            result.recoverable[i],
            result.unsecured[i],
            result.ltv_bps[i],
            result.over_cap[i],
        )
        assert got == (
            expected.collateral_value,
            expected.ead,
            expected.recoverable,
            expected.unsecured,
            expected.ltv_bps,
            expected.over_cap,
        )


def _small_book():
    start = date(2026, 1, 15)
    terms = [
        LoanTerms(f"L{i}", 10_000_000, Decimal("0.0899"), 36, "annuity", start) for i in range(3)
    ]
    first = terms[0].schedule()[0]
    payments = [[Payment("a", first.due_date, first.payment)], [], []]
    vehicles = [Collateral(12_000_000, start)] * 3
    return LoanBook.from_loans(terms, vehicles, PRODUCTS[:1], [0, 0, 0]), payments


def test_bucket_changed_events_against_the_previous_snapshot():
    book, payments = _small_book()
    arrays = PaymentArrays.from_payments(payments)
    night1 = run_portfolio(book, arrays, date(2026, 2, 15))
    assert [e.to_bucket for e in night1.events] == ["M0", "M0", "M0"]
    assert all(e.from_bucket is None for e in night1.events)
    night2 = run_portfolio(book, arrays, date(2026, 2, 16), previous_bucket=night1.bucket)
    assert [(e.loan, e.from_bucket, e.to_bucket, e.dpd) for e in night2.events] == [
        ("L1", "M0", "M1", 1),
        ("L2", "M0", "M1", 1),
    ]
    assert night2.events[0].as_dict()["date"] == "2026-02-16"


def test_manual_status_overrides_and_chunking_does_not_matter():
    book, payments = _small_book()
    arrays = PaymentArrays.from_payments(payments)
    manual = np.array([-1, STATUS_CODES.index(LoanStatus.WRITTEN_OFF), -1])
    whole = run_portfolio(book, arrays, date(2026, 9, 1), manual_status=manual)
    pieces = run_portfolio(book, arrays, date(2026, 9, 1), manual_status=manual, chunk_loans=1)
    forked = run_portfolio(book, arrays, date(2026, 9, 1), manual_status=manual, chunk_loans=1,
                           workers=2)
    assert STATUS_CODES[whole.status[1]] is LoanStatus.WRITTEN_OFF
    for name in ("dpd", "status", "penalty_accrued", "payoff", "unsecured"):
        assert np.array_equal(getattr(whole, name), getattr(pieces, name))
        assert np.array_equal(getattr(whole, name), getattr(forked, name))


def test_bad_payments_are_refused_with_the_field_named():
    book, _ = _small_book()

    def arrays(loan, day, amount):
        return PaymentArrays(np.array([loan]), np.array([day_number(day)]), np.array([amount]))

    as_of = date(2026, 6, 1)
    with pytest.raises(ValueError, match=r"^payment amount:"):
        run_portfolio(book, arrays(0, date(2026, 2, 1), 0), as_of)
    with pytest.raises(ValueError, match=r"^payment date:"):
        run_portfolio(book, arrays(0, date(2026, 1, 1), 100), as_of)
    with pytest.raises(ValueError, match=r"^payment loan:"):
        run_portfolio(book, arrays(7, date(2026, 2, 1), 100), as_of)
    with pytest.raises(ValueError, match=r"^as_of:"):
        run_portfolio(book, arrays(0, date(2026, 2, 1), 100), date(2026, 1, 1))


def test_a_payoff_settles_in_the_vectorized_run_and_stays_settled_past_maturity():
    start = date(2026, 1, 15)
    terms = LoanTerms("P", 10_000_000, Decimal("0.0899"), 12, "annuity", start)
    quote = loan_state(terms, PRODUCTS[0], [], date(2026, 3, 1)).payoff_amount
    book = LoanBook.from_loans([terms], [Collateral(12_000_000, start)], PRODUCTS[:1], [0])
    payments = PaymentArrays.from_payments([[Payment("x", date(2026, 3, 1), quote + 50)]])
    for as_of in (date(2026, 3, 1), date(2027, 6, 1)):
        result = run_portfolio(book, payments, as_of)
        assert STATUS_CODES[result.status[0]] is LoanStatus.SETTLED
        assert (result.dpd[0], result.outstanding_principal[0], result.payoff[0],
                result.credit[0], result.ead[0], result.next_due[0]) == (0, 0, 0, 50, 0, -1)
