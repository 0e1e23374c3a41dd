from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lienwatch.domain.allocation import Waterfall
from lienwatch.domain.delinquency import LoanStatus
from lienwatch.domain.money import MoneyError
from lienwatch.servicing.engine import (
    LoanAccount,
    PaymentConflictError,
    PaymentDateError,
    current_schedule,
    loan_state,
)
from lienwatch.servicing.product import LoanTerms, Overpayment, Payment, Product

START = date(2026, 1, 1)
# 12,000.00 CNY at 12 %, equal principal over 3 months: 4,000.00 principal each,
# interest 120.00 / 80.00 / 40.00, due Feb 1, Mar 1, Apr 1.
TERMS = LoanTerms("L1", 1_200_000, Decimal("0.12"), 3, "equal-principal", START)
# penalty 1.5 × 12 % = 18 % a year = 0.05 % a day (30/360); late fee 50.00
PRODUCT = Product(late_fee=5_000)


def test_missed_installments_accrue_penalty_fees_and_dpd():
    state = loan_state(TERMS, PRODUCT, [], date(2026, 3, 11))
    assert state.dpd == 38 and state.bucket == "M2" and state.status is LoanStatus.DELINQUENT
    assert state.penalty_accrued == 400_000 * 38 // 2000 + 400_000 * 10 // 2000  # 76.00 + 20.00
    assert state.fees_due == 10_000
    assert (state.outstanding_principal, state.overdue_principal, state.overdue_interest) == (
        1_200_000,
        800_000,
        20_000,
    )
    assert state.next_due_date == date(2026, 4, 1)
    running_interest = round(4_000 * 10 / 31)  # 10 of the 31 days of the third period
    assert state.payoff_amount == 1_200_000 + 20_000 + running_interest + 9_600 + 10_000


def test_partial_payment_follows_the_waterfall_and_penalty_runs_on_what_is_left():
    payment = Payment("p1", date(2026, 3, 11), 30_000)
    state = loan_state(TERMS, PRODUCT, [payment], date(2026, 3, 21))
    # 30,000 = penalty 7,600 + fee 5,000 + interest 12,000 + principal 5,400 of installment 1
    assert state.outstanding_principal == 1_200_000 - 5_400
    assert state.penalty_accrued == 394_600 * 10 // 2000 + 400_000 * 20 // 2000
    assert state.fees_due == 5_000
    assert state.dpd == 48


def test_on_time_payer_stays_current_and_closes_at_maturity():
    payments = [Payment(f"p{row.n}", row.due_date, row.payment) for row in TERMS.schedule()]
    for row in TERMS.schedule():
        state = loan_state(TERMS, PRODUCT, payments, row.due_date + timedelta(days=1))
        assert (state.dpd, state.penalty_accrued, state.fees_due) == (0, 0, 0)
    final = loan_state(TERMS, PRODUCT, payments, date(2026, 4, 1))
    assert final.status is LoanStatus.CLOSED and final.payoff_amount == 0
    assert final.next_due_date is None


def test_grace_days_and_tolerance():
    product = Product(late_fee=5_000, grace_days=3, tolerance=100)
    first = TERMS.schedule()[0]
    short = Payment("p1", first.due_date, first.payment - 99)  # 0.99 CNY short
    state = loan_state(TERMS, product, [short], date(2026, 2, 20))
    assert state.dpd == 0 and state.fees_due == 0
    late = loan_state(TERMS, product, [], date(2026, 2, 3))
    assert late.dpd == 0 and late.fees_due == 0  # still within grace
    assert loan_state(TERMS, product, [], date(2026, 2, 5)).dpd == 1


def test_overpayment_runs_ahead_then_becomes_credit():
    no_payoff = Product(late_fee=5_000, settle_at_payoff=False)
    total = sum(row.payment for row in TERMS.schedule())
    state = loan_state(
        TERMS, no_payoff, [Payment("all", date(2026, 1, 10), total + 777)], date(2026, 1, 10)
    )
    assert state.outstanding_principal == 0 and state.credit == 777
    assert state.status is LoanStatus.SETTLED


# -- early payoff -------------------------------------------------------------------------

# Nothing paid; on 2026-02-20 installment 1 is 19 days late (penalty 0.05 % a day on
# 4,000.00, late fee 50.00) and 19 of the 28 days of period 2 have run.
PAYOFF_DAY = date(2026, 2, 20)
PAYOFF_QUOTE = 1_200_000 + 12_000 + round(8_000 * 19 / 28) + 400_000 * 19 // 2000 + 5_000


def test_payoff_quote_charges_interest_only_to_its_date():
    assert loan_state(TERMS, PRODUCT, [], PAYOFF_DAY).payoff_amount == PAYOFF_QUOTE


def test_paying_the_payoff_quote_settles_the_loan_for_good():
    payoff = Payment("PAYOFF", PAYOFF_DAY, PAYOFF_QUOTE)
    for as_of in (PAYOFF_DAY, date(2026, 3, 20), date(2026, 9, 1)):
        state = loan_state(TERMS, PRODUCT, [payoff], as_of)
        assert state.status is LoanStatus.SETTLED
        assert (state.dpd, state.bucket, state.outstanding_principal, state.penalty_accrued,
                state.fees_due, state.payoff_amount, state.credit) == (0, "M0", 0, 0, 0, 0, 0)
        assert state.next_due_date is None
    # money after the payoff, or beyond the quote, is credit
    later = Payment("LATER", date(2026, 4, 1), 10_000)
    assert loan_state(TERMS, PRODUCT, [payoff, later], date(2026, 5, 1)).credit == 10_000
    more = Payment("PAYOFF", PAYOFF_DAY, PAYOFF_QUOTE + 123)
    assert loan_state(TERMS, PRODUCT, [more], PAYOFF_DAY).credit == 123
    # nothing falls due after the payoff day
    assert [r.due_date for r in current_schedule(TERMS, PRODUCT, [payoff], PAYOFF_DAY)] == [
        date(2026, 2, 1)
    ]


def test_a_fen_short_of_the_quote_is_an_ordinary_payment():
    state = loan_state(TERMS, PRODUCT, [Payment("P", PAYOFF_DAY, PAYOFF_QUOTE - 1)], PAYOFF_DAY)
    # allocated oldest first and running ahead: installments 1 and 2 are paid in full, their
    # interest included, so principal of installment 3 is still owed
    assert state.status is LoanStatus.ACTIVE and state.outstanding_principal > 0
    assert state.next_due_date == date(2026, 4, 1) and state.payoff_amount == 1


def test_payoff_settlement_can_be_switched_off_per_product():
    no_payoff = Product(late_fee=5_000, settle_at_payoff=False)
    state = loan_state(TERMS, no_payoff, [Payment("P", PAYOFF_DAY, PAYOFF_QUOTE)], PAYOFF_DAY)
    assert state.status is LoanStatus.ACTIVE and state.outstanding_principal > 0


def test_same_day_payments_settle_together_and_a_reversal_undoes_the_payoff():
    account = LoanAccount(TERMS, PRODUCT)
    account.post(Payment("A", PAYOFF_DAY, 500_000))
    account.post(Payment("B", PAYOFF_DAY, PAYOFF_QUOTE - 500_000))
    assert account.state(date(2026, 6, 1)).status is LoanStatus.SETTLED
    account.reverse("B")
    assert account.state(date(2026, 6, 1)) == loan_state(
        TERMS, PRODUCT, [Payment("A", PAYOFF_DAY, 500_000)], date(2026, 6, 1)
    )
    assert account.state(date(2026, 6, 1)).status is LoanStatus.DELINQUENT


def test_on_the_last_due_date_the_ordinary_allocation_closes_the_loan():
    rows = TERMS.schedule()
    paid = [Payment(f"p{r.n}", r.due_date, r.payment) for r in rows[:2]]
    last = Payment("last", rows[2].due_date, rows[2].payment)
    state = loan_state(TERMS, PRODUCT, [*paid, last], rows[2].due_date)
    assert state.status is LoanStatus.CLOSED and state.credit == 0


def test_waterfall_order_is_a_product_setting():
    interest_first = Product(
        late_fee=5_000, waterfall=Waterfall.parse("interest,principal,penalty,fee")
    )
    state = loan_state(
        TERMS, interest_first, [Payment("p", date(2026, 3, 11), 30_000)], date(2026, 3, 11)
    )
    assert state.outstanding_principal == 1_200_000 - 18_000
    assert state.fees_due == 10_000


def test_charge_off_and_operator_status():
    state = loan_state(TERMS, PRODUCT, [], date(2026, 8, 1))
    assert state.dpd == 181 and state.status is LoanStatus.CHARGED_OFF
    account = LoanAccount(TERMS, PRODUCT)
    account.set_status(LoanStatus.REPOSSESSED, date(2026, 6, 1))
    assert account.state(date(2026, 5, 31)).status is LoanStatus.DELINQUENT
    assert account.state(date(2026, 6, 1)).status is LoanStatus.REPOSSESSED


def test_idempotent_posting_and_conflicts():
    account = LoanAccount(TERMS, PRODUCT)
    payment = Payment("T1", date(2026, 2, 1), 412_000)
    assert account.post(payment) is True
    before = account.state(date(2026, 3, 15))
    assert account.post(payment) is False
    with pytest.raises(PaymentConflictError, match="T1"):
        account.post(Payment("T1", date(2026, 2, 1), 412_001))
    with pytest.raises(PaymentDateError, match="before"):
        account.post(Payment("T0", date(2025, 12, 31), 100))
    assert account.state(date(2026, 3, 15)) == before
    assert account.payments == (payment,)


def test_reversal_replays_as_if_the_payment_never_came():
    account = LoanAccount(TERMS, PRODUCT)
    account.post(Payment("T1", date(2026, 2, 1), 412_000))
    account.post(Payment("T2", date(2026, 3, 1), 408_000))
    assert account.state(date(2026, 3, 20)).dpd == 0
    assert account.reverse("T1") is True
    assert account.reverse("T1") is False
    assert account.state(date(2026, 3, 20)) == loan_state(
        TERMS, PRODUCT, [Payment("T2", date(2026, 3, 1), 408_000)], date(2026, 3, 20)
    )
    with pytest.raises(KeyError, match="external_id"):
        account.reverse("nope")


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Payment("x", START, 0), "amount"),
        (lambda: Payment("x", START, -5), "amount"),
        (lambda: Payment("x", START, 100, currency="USD"), "currency"),
        (lambda: Payment("", START, 100), "external_id"),
        (lambda: LoanTerms("L", 100, Decimal("1.5"), 12, "annuity", START), "annual_rate"),
        (lambda: LoanTerms("L", 100, Decimal("0.1"), 0, "annuity", START), "term"),
        (lambda: LoanTerms("L", -1, Decimal("0.1"), 12, "annuity", START), "principal"),
        (
            lambda: LoanTerms("L", 100, Decimal("0.1"), 12, "annuity", START, currency="HKD"),
            "currency",
        ),
        (lambda: Product(late_fee=-1), "late_fee"),
        (lambda: Product(recovery_rate=Fraction(2)), "recovery_rate"),
        (lambda: Product(ltv_caps={}), "ltv_caps"),
        (lambda: Product(overpayment="refund"), "overpayment"),
        (lambda: Product(settle_at_payoff="no"), "settle_at_payoff"),
    ],
)
def test_bad_input_names_the_field(make, field):
    with pytest.raises((ValueError, MoneyError), match=rf"^{field}:"):
        make()


def test_financed_upfront_fee_is_amortized():
    terms = LoanTerms(
        "L",
        1_200_000,
        Decimal("0.12"),
        3,
        "equal-principal",
        START,
        upfront_fee=30_000,
        fee_financed=True,
    )
    assert sum(row.principal for row in terms.schedule()) == 1_230_000
    paid_at_signing = LoanTerms(
        "L", 1_200_000, Decimal("0.12"), 3, "equal-principal", START, upfront_fee=30_000
    )
    assert sum(row.principal for row in paid_at_signing.schedule()) == 1_200_000


def test_paying_exact_installments_gives_dpd_from_the_first_unpaid_due_date():
    # With no penalty and no fee, the k-th exact installment payment settles installment k.
    terms = LoanTerms("L", 5_000_000, Decimal("0.0899"), 12, "annuity", date(2026, 1, 31))
    plain = Product(penalty_multiple=Fraction(0))
    rows = terms.schedule()
    paid = [Payment(f"p{r.n}", r.due_date + timedelta(days=20), r.payment) for r in rows[:4]]
    as_of = date(2026, 9, 15)
    state = loan_state(terms, plain, paid, as_of)
    assert state.dpd == (as_of - rows[4].due_date).days
    assert state.outstanding_principal == rows[3].balance_after


# -- replay: backdating and reversals always equal a from-scratch recomputation -------

operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("post"),
            st.integers(0, 9),
            st.integers(0, 120),
            # up to about the payoff quote (1.2M + interest): payoffs, and their reversals
            st.one_of(st.integers(1, 600_000), st.integers(1_150_000, 1_300_000)),
        ),
        st.tuples(st.just("repost"), st.integers(0, 9)),
        st.tuples(st.just("reverse"), st.integers(0, 9)),
        st.tuples(st.just("read"), st.integers(0, 150)),
    ),
    max_size=25,
)


@settings(max_examples=120, deadline=None)
@given(
    operations,
    st.sampled_from(
        [
            PRODUCT,
            Product(late_fee=3_000, grace_days=5, tolerance=0),
            Product(late_fee=3_000, overpayment=Overpayment.REDUCE_TERM),
            Product(
                overpayment=Overpayment.REDUCE_INSTALLMENT,
                waterfall=Waterfall.parse("principal,interest,fee,penalty"),
            ),
        ]
    ),
)
def test_incremental_replay_equals_recomputation_from_scratch(ops, product):
    account = LoanAccount(TERMS, product)
    posted: dict[int, Payment] = {}
    for op in ops:
        if op[0] == "post":
            _, key, day, amount = op
            payment = Payment(f"T{key}", START + timedelta(days=day), amount)
            if key in posted and posted[key] != payment:
                before = account.state(date(2026, 5, 1))
                with pytest.raises(PaymentConflictError):
                    account.post(payment)
                assert account.state(date(2026, 5, 1)) == before
            else:
                assert account.post(payment) is (key not in posted)
                posted[key] = payment
        elif op[0] == "repost" and op[1] in posted:
            assert account.post(posted[op[1]]) is False
        elif op[0] == "reverse" and op[1] in posted:
            account.reverse(f"T{op[1]}")
        elif op[0] == "read":
            as_of = START + timedelta(days=op[1])
            assert account.state(as_of) == loan_state(TERMS, product, account.payments, as_of)
    for as_of in (date(2026, 2, 15), date(2026, 4, 1), date(2026, 7, 1)):
        assert account.state(as_of) == loan_state(TERMS, product, account.payments, as_of)


# -- overpayment as principal prepayment -----------------------------------------------

ANNUITY = LoanTerms("A", 1_200_000, Decimal("0.12"), 12, "annuity", START)


def _prepay_on_first_due_date(policy: Overpayment, extra: int):
    product = Product(overpayment=policy)
    first = ANNUITY.schedule()[0]
    payment = Payment("p1", first.due_date, first.payment + extra)
    return product, [payment], current_schedule(ANNUITY, product, [payment], first.due_date)


def test_reduce_installment_keeps_the_term_and_lowers_the_installments():
    original = ANNUITY.schedule()
    _, _, rows = _prepay_on_first_due_date(Overpayment.REDUCE_INSTALLMENT, 300_000)
    prepaid = 300_000 - original[1].payment  # after settling the next installment
    assert len(rows) == 12 and sum(r.principal for r in rows) == ANNUITY.principal - prepaid
    assert rows[1].balance_after == original[1].balance_after - prepaid
    # the next installment is settled in advance as it was
    assert (rows[1].principal, rows[1].interest) == (original[1].principal, original[1].interest)
    assert rows[2].payment < original[2].payment
    assert len({r.payment for r in rows[2:-1]}) == 1  # a new regular installment


def test_reduce_term_keeps_the_installment_and_shortens_the_loan():
    original = ANNUITY.schedule()
    product, payments, rows = _prepay_on_first_due_date(Overpayment.REDUCE_TERM, 300_000)
    prepaid = 300_000 - original[1].payment
    assert len(rows) < 12 and sum(r.principal for r in rows) == ANNUITY.principal - prepaid
    assert {r.payment for r in rows[2:-1]} == {original[0].payment}
    payments += [Payment(f"r{r.n}", r.due_date, r.payment) for r in rows[2:]]
    state = loan_state(ANNUITY, product, payments, rows[-1].due_date)
    assert state.status is LoanStatus.SETTLED and state.outstanding_principal == 0


def test_prepaying_everything_settles_and_keeps_the_rest_as_credit():
    product, payments, rows = _prepay_on_first_due_date(Overpayment.REDUCE_TERM, 2_000_000)
    state = loan_state(ANNUITY, product, payments, date(2026, 2, 1))
    assert state.outstanding_principal == 0 and state.status is LoanStatus.SETTLED
    # it covers the payoff quote: installment 1 and the remaining principal, no later interest
    original = ANNUITY.schedule()
    assert state.credit == 2_000_000 - original[0].balance_after
    assert len(rows) == 1 and rows[0].balance_after == 0
