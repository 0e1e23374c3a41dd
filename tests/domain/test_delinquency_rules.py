from datetime import date

import numpy as np
import pytest

from lienwatch.domain.allocation import Component, Waterfall, fill_in_order
from lienwatch.domain.delinquency import (
    DEFAULT_BUCKETS,
    Bucket,
    BucketHistory,
    BucketScheme,
    LoanStatus,
    days_past_due,
    derive_status,
)


@pytest.mark.parametrize(
    ("dpd", "bucket"),
    [
        (0, "M0"),
        (1, "M1"),
        (30, "M1"),
        (31, "M2"),
        (60, "M2"),
        (61, "M3"),
        (90, "M3"),
        (91, "M4"),
        (121, "M5"),
        (151, "M6"),
        (180, "M6"),
        (181, "M7+"),
        (5000, "M7+"),
    ],
)
def test_default_buckets(dpd, bucket):
    assert DEFAULT_BUCKETS.name_for(dpd) == bucket
    assert DEFAULT_BUCKETS.names[DEFAULT_BUCKETS.indices(np.array([dpd]))[0]] == bucket


def test_bucket_schemes_must_be_contiguous_from_zero_and_open_ended():
    with pytest.raises(ValueError, match="start at DPD 0"):
        BucketScheme((Bucket("A", 1, None),))
    with pytest.raises(ValueError, match="right after"):
        BucketScheme((Bucket("A", 0, 10), Bucket("B", 12, None)))
    with pytest.raises(ValueError, match="open-ended"):
        BucketScheme((Bucket("A", 0, 10), Bucket("B", 11, 20)))
    custom = BucketScheme.from_bounds(["current", "late", "default"], [0, 89])
    assert [custom.name_for(d) for d in (0, 1, 89, 90)] == ["current", "late", "late", "default"]


def test_days_past_due_subtracts_grace_and_never_goes_negative():
    assert days_past_due(date(2026, 3, 20), date(2026, 3, 15)) == 5
    assert days_past_due(date(2026, 3, 20), date(2026, 3, 15), grace_days=3) == 2
    assert days_past_due(date(2026, 3, 16), date(2026, 3, 15), grace_days=3) == 0
    assert days_past_due(date(2026, 3, 16), None) == 0


def test_status_follows_dpd_unless_an_operator_set_one():
    common = {"paid_in_full": False, "matured": False, "charge_off_dpd": 180}
    assert derive_status(dpd=0, **common) is LoanStatus.ACTIVE
    assert derive_status(dpd=1, **common) is LoanStatus.DELINQUENT
    assert derive_status(dpd=180, **common) is LoanStatus.CHARGED_OFF
    assert derive_status(dpd=200, **common, manual=LoanStatus.REPOSSESSED) is LoanStatus.REPOSSESSED
    assert (
        derive_status(dpd=0, paid_in_full=True, matured=True, charge_off_dpd=180)
        is LoanStatus.CLOSED
    )
    assert (
        derive_status(dpd=0, paid_in_full=True, matured=False, charge_off_dpd=180)
        is LoanStatus.SETTLED
    )
    with pytest.raises(ValueError, match=r"^status:"):
        derive_status(dpd=0, **common, manual=LoanStatus.ACTIVE)


def test_bucket_history_is_append_only_and_emits_changes():
    history = BucketHistory("L1")
    first = history.observe(date(2026, 3, 1), "M0", 0)
    assert first is not None and first.from_bucket is None
    assert history.observe(date(2026, 3, 2), "M0", 0) is None
    moved = history.observe(date(2026, 3, 16), "M1", 1)
    assert moved.as_dict() == {
        "loan": "L1",
        "date": "2026-03-16",
        "from": "M0",
        "to": "M1",
        "dpd": 1,
    }
    with pytest.raises(ValueError, match=r"^date:"):
        history.observe(date(2026, 3, 10), "M0", 0)
    assert [row.to_bucket for row in history.rows] == ["M0", "M1"]


def test_waterfall_settles_in_its_order_and_returns_the_rest():
    owed = {
        Component.PENALTY: 5,
        Component.FEE: 10,
        Component.INTEREST: 20,
        Component.PRINCIPAL: 100,
    }
    got, rest = Waterfall().settle(30, owed)
    assert (
        got
        == {Component.PENALTY: 5, Component.FEE: 10, Component.INTEREST: 15, Component.PRINCIPAL: 0}
        and rest == 0
    )
    got, rest = Waterfall.parse("interest,principal,penalty,fee").settle(130, owed)
    assert got[Component.PRINCIPAL] == 100 and got[Component.PENALTY] == 5
    assert got[Component.FEE] == 5 and rest == 0
    assert fill_in_order(50, [10, 20]) == ([10, 20], 20)


def test_waterfall_must_name_each_component_once():
    with pytest.raises(ValueError, match=r"^waterfall:"):
        Waterfall((Component.PENALTY, Component.PENALTY, Component.FEE, Component.INTEREST))
    with pytest.raises(ValueError, match=r"^waterfall:"):
        Waterfall.parse("penalty,fee,interest,capital")
