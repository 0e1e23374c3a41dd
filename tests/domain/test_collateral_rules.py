from datetime import date, timedelta
from fractions import Fraction
from itertools import pairwise

import pytest

from lienwatch.domain.collateral import (
    MAX_LTV_BPS,
    Appraisal,
    DepreciationCurve,
    VehicleClass,
    exposure,
    vehicle_value,
)

BOUGHT = date(2026, 1, 1)


def test_default_curve_loses_a_fifth_in_year_one_then_15_percent_a_year():
    price = 20_000_000
    assert vehicle_value(price, BOUGHT, BOUGHT) == price
    assert vehicle_value(price, BOUGHT, BOUGHT + timedelta(days=365)) == 16_000_000
    assert vehicle_value(price, BOUGHT, BOUGHT + timedelta(days=730)) == 13_600_000
    assert vehicle_value(price, BOUGHT, BOUGHT + timedelta(days=3 * 365)) == 11_560_000
    # linear inside the first year: half a year ≈ 10 % lost
    half = vehicle_value(price, BOUGHT, BOUGHT + timedelta(days=182))
    assert half == 20_000_000 * 900_274 // 1_000_000


def test_value_never_increases_with_age():
    curve = DepreciationCurve()
    table = curve.factors_ppm()
    assert all(a >= b for a, b in pairwise(table))


def test_appraisal_replaces_the_curve_from_its_date():
    price = 20_000_000
    appraisal = Appraisal(BOUGHT + timedelta(days=365), 12_000_000)
    assert vehicle_value(price, BOUGHT, BOUGHT + timedelta(days=300), [appraisal]) == vehicle_value(
        price, BOUGHT, BOUGHT + timedelta(days=300)
    )
    assert vehicle_value(price, BOUGHT, BOUGHT + timedelta(days=365), [appraisal]) == 12_000_000
    # a year after the appraisal: 15 % less
    assert vehicle_value(price, BOUGHT, BOUGHT + timedelta(days=730), [appraisal]) == 10_200_000


def test_exposure_figures():
    result = exposure(
        outstanding_principal=9_000_000,
        overdue_interest=100_000,
        penalty=5_000,
        fees=10_000,
        collateral_value=10_000_000,
        recovery_rate=Fraction(7, 10),
        ltv_cap=Fraction(8, 10),
    )
    assert result.ead == 9_115_000
    assert result.recoverable == 7_000_000
    assert result.unsecured == 2_115_000
    assert result.ltv_bps == 9_000 and result.over_cap
    covered = exposure(
        outstanding_principal=1_000_000,
        overdue_interest=0,
        penalty=0,
        fees=0,
        collateral_value=10_000_000,
        recovery_rate=Fraction(7, 10),
        ltv_cap=Fraction(8, 10),
    )
    assert covered.unsecured == 0 and not covered.over_cap and str(covered.ltv) == "0.1"


def test_worthless_collateral_has_maximal_ltv_and_bad_rates_are_refused():
    result = exposure(
        outstanding_principal=1,
        overdue_interest=0,
        penalty=0,
        fees=0,
        collateral_value=0,
        recovery_rate=Fraction(1, 2),
        ltv_cap=Fraction(1),
    )
    assert result.ltv_bps == MAX_LTV_BPS and result.over_cap
    with pytest.raises(ValueError, match=r"^recovery_rate:"):
        exposure(
            outstanding_principal=1,
            overdue_interest=0,
            penalty=0,
            fees=0,
            collateral_value=1,
            recovery_rate=Fraction(3, 2),
            ltv_cap=Fraction(1),
        )
    with pytest.raises(ValueError, match=r"^price:"):
        vehicle_value(0, BOUGHT, BOUGHT)


def test_vehicle_class_from_energy_and_condition():
    assert VehicleClass.of("ice", "new") is VehicleClass.NEW_ICE
    assert VehicleClass.of("nev", "new") is VehicleClass.NEW_NEV
    assert VehicleClass.of("nev", "used") is VehicleClass.USED
