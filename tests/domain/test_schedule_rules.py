from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import numpy_financial as npf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lienwatch.domain.calendar import add_months, due_dates, local_date
from lienwatch.domain.money import MoneyError, div_round_half_up, require_currency
from lienwatch.domain.schedule import (
    DayCount,
    Method,
    annuity_factor,
    annuity_payment,
    build_schedule,
    period_interest,
)

principals = st.integers(min_value=1_000, max_value=1_000_000_000)
rates = st.integers(min_value=0, max_value=3_000).map(lambda bp: Decimal(bp) / 10_000)
terms = st.integers(min_value=1, max_value=120)
starts = st.dates(min_value=date(2000, 1, 1), max_value=date(2080, 12, 31))


def half_up(value: float) -> int:
    return int(Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@settings(max_examples=300, deadline=None)
@given(principals, rates.filter(lambda r: r > 0), terms)
def test_annuity_installment_is_numpy_financial_pmt_rounded_to_the_fen(principal, rate, term):
    floating = float(npf.pmt(float(rate) / 12, term, -principal))
    exact = principal * annuity_factor(Fraction(rate) / 12, term)
    ours = annuity_payment(principal, Fraction(rate) / 12, term)
    # numpy-financial's (1 + r)^n − 1 loses digits for tiny rates: allow 1e-9 relative
    noise = exact / 10**9
    assert abs(Fraction(floating) - exact) < noise
    if abs(exact - int(exact) - Fraction(1, 2)) > noise:
        assert ours == half_up(floating)
    else:  # (within float noise of) a half fen: ours is the exact rounding
        assert ours == int(exact + Fraction(1, 2))


def test_an_exact_half_fen_rounds_up_even_where_floats_fall_short():
    # 10.00 CNY at 4.2 % for one month: 1,003.5 fen exactly; numpy-financial 1003.4999…
    assert float(npf.pmt(0.042 / 12, 1, -1_000)) < 1003.5
    assert annuity_payment(1_000, Fraction(42, 1000) / 12, 1) == 1_004


@settings(max_examples=150, deadline=None)
@given(st.integers(100_000, 10**9), rates.filter(lambda r: r > 0), st.integers(2, 120), starts)
def test_annuity_rows_pay_the_regular_installment_except_the_last(principal, rate, term, start):
    # (below ~1,000 CNY the fen rounding of a long schedule can exhaust the balance early)
    rows = build_schedule(
        principal=principal, annual_rate=rate, term=term, method=Method.ANNUITY, start=start
    )
    regular = half_up(float(npf.pmt(float(rate) / 12, term, -principal)))
    assert {row.payment for row in rows[:-1]} == {regular}


@settings(max_examples=200, deadline=None)
@given(principals, rates, terms, st.sampled_from(Method), starts, st.sampled_from(DayCount))
def test_principal_parts_sum_to_the_principal_and_balance_runs_down(
    principal, rate, term, method, start, day_count
):
    rows = build_schedule(
        principal=principal,
        annual_rate=rate,
        term=term,
        method=method,
        start=start,
        day_count=day_count,
    )
    assert sum(row.principal for row in rows) == principal
    assert rows[-1].balance_after == 0
    balances = [principal] + [row.balance_after for row in rows]
    assert all(
        b - a == row.principal for a, b, row in zip(balances[1:], balances, rows, strict=False)
    )
    assert all(row.principal >= 0 and row.interest >= 0 for row in rows)
    assert [row.due_date for row in rows] == due_dates(start, term)


def test_worked_example_100k_at_8_99_percent_over_36_months():
    rows = build_schedule(
        principal=10_000_000,
        annual_rate=Decimal("0.0899"),
        term=36,
        method="annuity",
        start=date(2026, 1, 15),
    )
    assert rows[0].payment == 317_951  # 3179.51 CNY, numpy-financial pmt 3179.5078...
    assert rows[0].interest == 74_917  # 100000 × 0.0899 / 12 = 749.1666…
    assert rows[0].due_date == date(2026, 2, 15)


def test_equal_principal_and_interest_only_shapes():
    equal = build_schedule(
        principal=1_000_000,
        annual_rate=Decimal("0.12"),
        term=3,
        method="equal-principal",
        start=date(2026, 1, 1),
    )
    assert [r.principal for r in equal] == [333_333, 333_333, 333_334]
    assert [r.interest for r in equal] == [10_000, 6_667, 3_333]
    bullet = build_schedule(
        principal=1_000_000,
        annual_rate=Decimal("0.12"),
        term=3,
        method="interest-only",
        start=date(2026, 1, 1),
    )
    assert [r.principal for r in bullet] == [0, 0, 1_000_000]
    assert [r.interest for r in bullet] == [10_000] * 3


def test_act_365_interest_follows_the_days_of_each_period():
    rows = build_schedule(
        principal=3_650_000,
        annual_rate=Decimal("0.10"),
        term=2,
        method="interest-only",
        start=date(2026, 1, 31),
        day_count=DayCount.ACT_365,
    )
    assert [r.due_date for r in rows] == [date(2026, 2, 28), date(2026, 3, 31)]
    assert [r.interest for r in rows] == [28 * 1_000, 31 * 1_000]


def test_due_dates_anchor_on_the_disbursement_day_at_month_end():
    assert due_dates(date(2028, 1, 31), 4) == [
        date(2028, 2, 29),
        date(2028, 3, 31),
        date(2028, 4, 30),
        date(2028, 5, 31),
    ]
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)


def test_local_date_uses_the_loans_time_zone():
    late_evening_utc = datetime(2026, 3, 15, 16, 30, tzinfo=UTC)  # 00:30 on the 16th in Beijing
    assert local_date(late_evening_utc) == date(2026, 3, 16)
    assert local_date(late_evening_utc, "Europe/London") == date(2026, 3, 15)
    with pytest.raises(ValueError, match=r"^moment:"):
        local_date(datetime(2026, 3, 15, 16, 30))


def test_period_interest_rounds_half_up_exactly():
    # 150 fen at 4 % a year for a month is exactly 0.5 fen: half up gives 1
    assert period_interest(150, Fraction(4, 100), 30, DayCount.THIRTY_360) == 1
    assert period_interest(149, Fraction(4, 100), 30, DayCount.THIRTY_360) == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"principal": 0}, "principal"),
        ({"principal": -5}, "principal"),
        ({"term": 0}, "term"),
        ({"term": 121}, "term"),
        ({"annual_rate": Decimal("1")}, "annual_rate"),
        ({"annual_rate": Decimal("-0.01")}, "annual_rate"),
        ({"annual_rate": "abc"}, "annual_rate"),
        ({"method": "balloon"}, "method"),
        ({"day_count": "act/360"}, "day_count"),
    ],
)
def test_bad_terms_name_the_field(changes, field):
    args = {
        "principal": 100_000,
        "annual_rate": Decimal("0.1"),
        "term": 12,
        "method": "annuity",
        "start": date(2026, 1, 1),
    } | changes
    with pytest.raises(ValueError, match=rf"^{field}:"):
        build_schedule(**args)


@given(st.integers(-(10**12), 10**12), st.integers(1, 10**9))
def test_div_round_half_up_matches_exact_rounding(numerator, denominator):
    exact = Decimal(numerator) / Decimal(denominator)
    expected = int((Fraction(numerator, denominator) + Fraction(1, 2)).__floor__())
    assert div_round_half_up(numerator, denominator) == expected
    assert abs(expected - exact) <= Decimal("0.5")


def test_only_cny_is_accepted():
    require_currency("CNY")
    with pytest.raises(MoneyError, match=r"^currency:"):
        require_currency("USD")


def test_the_regular_installment_is_the_second_due_or_the_first():
    from lienwatch.domain.schedule import regular_installment

    assert regular_installment([412_00, 318_050, 318_050]) == 318_050  # a broken first period
    assert regular_installment([318_050]) == 318_050
    assert regular_installment([]) == 0
