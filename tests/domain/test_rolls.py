"""The one roll-rate and cure-rate definition, against counts made by hand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lienwatch.domain.rolls import Move, flows

BUCKETS = ("M0", "M1", "M2", "M3")


def test_roll_is_any_deeper_bucket_and_cure_is_the_first():
    moves = [
        Move("M0", "M0", 100), Move("M0", "M1", 50),
        Move("M1", "M2", 200), Move("M1", "M3", 10), Move("M1", "M0", 300), Move("M1", "M1", 90),
        Move("M2", "M1", 40),
        Move("M3", "M3", 70),
    ]  # fmt: skip
    m0, m1, m2, m3 = flows(moves, BUCKETS)
    assert (m0.count, m0.weight, m0.rolled, m0.cured) == (2, 150, 50, 0)
    assert (m1.count, m1.weight, m1.rolled, m1.cured) == (4, 600, 210, 300)
    assert (m1.roll_rate, m1.cure_rate) == (210 / 600, 0.5)
    assert m1.to == {"M2": 200, "M3": 10, "M0": 300, "M1": 90}
    assert m1.share_to("M0") == 0.5 and m1.share_to("M3") == 10 / 600
    assert (m2.roll_rate, m2.cure_rate) == (0.0, 0.0)  # back one bucket is neither
    assert (m3.roll_rate, m3.cure_rate) == (0.0, 0.0)


def test_an_empty_bucket_has_no_rate_and_unknown_buckets_are_named():
    (m0, m1, *_) = flows([Move("M0", "M1")], BUCKETS)
    assert (m0.roll_rate, m1.roll_rate, m1.cure_rate, m1.share_to("M0")) == (1.0, None, None, None)
    with pytest.raises(ValueError, match=r"^bucket: 'M9' is not one of M0, M1, M2, M3$"):
        flows([Move("M1", "M9")], BUCKETS)


@given(st.lists(st.tuples(st.sampled_from(BUCKETS), st.sampled_from(BUCKETS),
                          st.integers(0, 10**9))))  # fmt: skip
def test_flows_partition_the_weight(pairs):
    result = flows([Move(a, b, w) for a, b, w in pairs], BUCKETS)
    for f in result:
        assert sum(f.to.values()) == f.weight == sum(w for a, _, w in pairs if a == f.bucket)
        assert f.rolled + f.cured <= f.weight
    assert sum(f.count for f in result) == len(pairs)
