from datetime import date
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lienwatch.domain.schedule import DayCount, Method, annuity_payment, build_schedule
from lienwatch.servicing.portfolio import day_number
from lienwatch.servicing.schedules import (
    DAY_COUNT_CODES,
    METHOD_CODES,
    annuity_payments,
    build_schedules,
    rate_arrays,
)

loan = st.tuples(
    st.integers(1_000, 10**10),
    st.integers(0, 999_999).map(lambda micro: Decimal(micro) / 1_000_000),
    st.integers(1, 120),
    st.sampled_from(Method),
    st.one_of(
        st.dates(date(1990, 1, 1), date(2090, 12, 31)),
        st.sampled_from([date(2024, 1, 31), date(2023, 12, 31), date(2024, 2, 29)]),
    ),
    st.sampled_from(DayCount),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(loan, min_size=1, max_size=30))
def test_vectorized_schedules_equal_build_schedule_to_the_fen(loans):
    num, den = rate_arrays([Fraction(rate) for _, rate, *_ in loans])
    got = build_schedules(
        principal=np.array([p for p, *_ in loans]),
        rate_num=num,
        rate_den=den,
        term=np.array([t for _, _, t, *_ in loans]),
        method=np.array([METHOD_CODES.index(m) for *_, m, _, _ in loans]),
        start=np.array([day_number(s) for *_, s, _ in loans]),
        day_count=np.array([DAY_COUNT_CODES.index(d) for *_, d in loans]),
    )
    for i, (principal, rate, term, method, start, day_count) in enumerate(loans):
        rows = build_schedule(
            principal=principal,
            annual_rate=rate,
            term=term,
            method=method,
            start=start,
            day_count=day_count,
        )
        lo, hi = got.offsets[i], got.offsets[i + 1]
        assert got.due[lo:hi].tolist() == [day_number(r.due_date) for r in rows]
        assert got.principal[lo:hi].tolist() == [r.principal for r in rows]
        assert got.interest[lo:hi].tolist() == [r.interest for r in rows]
        assert got.balance_after[lo:hi].tolist() == [r.balance_after for r in rows]


def test_float_estimated_annuity_payments_equal_exact_ones_on_many_loans():
    rng = np.random.default_rng(42)
    size = 20_000
    principal = rng.integers(1_000, 10**10, size)
    num = rng.integers(0, 999_999, size)
    den = np.full(size, 1_000_000)
    term = rng.integers(1, 121, size)
    fast = annuity_payments(principal, num, den, term)
    for i in range(size):
        exact = annuity_payment(
            int(principal[i]), Fraction(int(num[i]), 12 * int(den[i])), int(term[i])
        )
        assert fast[i] == exact


def test_exact_half_fen_ties_round_up():
    # 0 %: 3 fen over 2 months is 1.5 fen per month, rounded half up to 2
    assert annuity_payments(np.array([3]), np.array([0]), np.array([1]), np.array([2]))[0] == 2


def test_inputs_beyond_int64_room_are_refused_by_field():
    common = {
        "rate_den": np.array([1]),
        "term": np.array([12]),
        "method": np.array([0]),
        "start": np.array([20_000]),
        "day_count": np.array([0]),
    }
    with pytest.raises(ValueError, match=r"^principal:"):
        build_schedules(principal=np.array([10**11]), rate_num=np.array([0]), **common)
    with pytest.raises(ValueError, match=r"^annual_rate:"):
        build_schedules(
            principal=np.array([10**10]),
            rate_num=np.array([10**12]),
            **common | {"rate_den": np.array([10**13])},
        )
    with pytest.raises(ValueError, match=r"^term:"):
        build_schedules(
            principal=np.array([100]), rate_num=np.array([0]), **common | {"term": np.array([121])}
        )
