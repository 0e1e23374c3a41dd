"""Collateral value over time and the exposure it leaves uncovered.

Value follows a depreciation curve (default: −20 % over the first year, linearly, then −15 %
a year compounding by day), overridden by dated appraisals. The curve is tabulated once per
day of vehicle age as an integer factor in parts per million, so that the per-loan path and
the vectorized portfolio path read the very same numbers and round the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache

import numpy as np

from lienwatch.domain.money import div_round_half_up

PPM = 1_000_000
YEAR_DAYS = 365
MAX_AGE_DAYS = 40 * YEAR_DAYS  # past 40 years the value stays where the curve left it


@dataclass(frozen=True, slots=True)
class DepreciationCurve:
    """``value(t) = price × (1 − first_year_loss × t)`` for t < 1 year, then
    ``price × (1 − first_year_loss) × (1 − yearly_loss)^(t − 1)``; t in days / 365."""

    first_year_loss: Decimal = Decimal("0.20")
    yearly_loss: Decimal = Decimal("0.15")

    def __post_init__(self) -> None:
        for name in ("first_year_loss", "yearly_loss"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name}: must be within 0–100 %, got {getattr(self, name)}")

    def factors_ppm(self) -> np.ndarray:
        """Remaining value per day of age, ``MAX_AGE_DAYS + 1`` int64 entries in ppm."""
        return _factor_table(self.first_year_loss, self.yearly_loss)

    def factor_ppm(self, age_days: int) -> int:
        """Remaining value after ``age_days`` days (clamped to 0–``MAX_AGE_DAYS``), in ppm."""
        return int(self.factors_ppm()[min(max(age_days, 0), MAX_AGE_DAYS)])


@lru_cache(maxsize=8)
def _factor_table(first_year_loss: Decimal, yearly_loss: Decimal) -> np.ndarray:
    table = np.empty(MAX_AGE_DAYS + 1, dtype=np.int64)
    first_year = Fraction(first_year_loss)
    for day in range(YEAR_DAYS):
        exact = PPM * (1 - first_year * day / YEAR_DAYS)
        table[day] = div_round_half_up(exact.numerator, exact.denominator)
    with localcontext() as ctx:
        ctx.prec = 40  # 14,600 multiplications lose far less than the ppm we keep
        daily = (1 - yearly_loss) ** (Decimal(1) / YEAR_DAYS)
        factor = (1 - first_year_loss) * PPM
        for day in range(YEAR_DAYS, MAX_AGE_DAYS + 1):
            exact = Fraction(factor)
            table[day] = div_round_half_up(exact.numerator, exact.denominator)
            factor *= daily
    table.flags.writeable = False
    return table


@dataclass(frozen=True, slots=True)
class Appraisal:
    """A dated valuation of the vehicle in fen; it replaces the curve from that day on."""

    on: date
    value: int


def vehicle_value(
    price: int, purchased_on: date, on: date, appraisals: Sequence[Appraisal] = (),
    curve: DepreciationCurve = DepreciationCurve(),
) -> int:
    """Value of the vehicle on ``on`` in fen.

    Without an appraisal on or before ``on``: ``price`` depreciated along ``curve``. With one:
    the latest appraisal, depreciated along the curve from its date.
    """
    if price <= 0:
        raise ValueError(f"price: must be positive, got {price}")
    base, base_day = price, purchased_on
    for appraisal in sorted(appraisals, key=lambda a: a.on):
        if appraisal.value < 0:
            raise ValueError(f"appraisal value: must not be negative, got {appraisal.value}")
        if appraisal.on <= on:
            base, base_day = appraisal.value, appraisal.on
    return depreciate(base, (base_day - purchased_on).days, (on - purchased_on).days, curve)


def depreciate(value: int, from_age_days: int, to_age_days: int, curve: DepreciationCurve) -> int:
    """``value`` known at one vehicle age carried along ``curve`` to another age."""
    return div_round_half_up(value * curve.factor_ppm(to_age_days), curve.factor_ppm(from_age_days))


class VehicleClass(StrEnum):
    """The classes LTV caps are set for."""

    NEW_ICE = "new-ice"
    NEW_NEV = "new-nev"
    USED = "used"

    @classmethod
    def of(cls, energy: str, condition: str) -> VehicleClass:
        """Class from a vehicle's ``energy`` (ice|nev) and ``condition`` (new|used)."""
        if condition == "used":
            return cls.USED
        return cls.NEW_NEV if energy == "nev" else cls.NEW_ICE


DEFAULT_LTV_CAPS: dict[VehicleClass, Fraction] = {
    VehicleClass.NEW_ICE: Fraction(80, 100),
    VehicleClass.NEW_NEV: Fraction(85, 100),
    VehicleClass.USED: Fraction(70, 100),
}


@dataclass(frozen=True, slots=True)
class Exposure:
    """Exposure of one loan on a date; amounts in fen, LTV in basis points."""

    ead: int  # outstanding principal + overdue interest + penalty + fees
    collateral_value: int
    recoverable: int  # collateral value × recovery rate
    unsecured: int  # max(0, EAD − recoverable)
    ltv_bps: int  # outstanding principal / collateral value
    over_cap: bool

    @property
    def ltv(self) -> Decimal:
        return Decimal(self.ltv_bps) / 10_000


def exposure(
    *, outstanding_principal: int, overdue_interest: int, penalty: int, fees: int,
    collateral_value: int, recovery_rate: Fraction, ltv_cap: Fraction,
) -> Exposure:
    """EAD, recoverable and unsecured amounts and LTV for one loan.

    A collateral value of 0 gives the largest representable LTV (the cap is then exceeded).
    """
    if not 0 <= recovery_rate <= 1:
        raise ValueError(f"recovery_rate: must be within 0–100 %, got {recovery_rate}")
    ead = outstanding_principal + overdue_interest + penalty + fees
    recoverable = div_round_half_up(collateral_value * recovery_rate.numerator,
                                    recovery_rate.denominator)
    ltv_bps = ltv_basis_points(outstanding_principal, collateral_value)
    return Exposure(ead, collateral_value, recoverable, max(0, ead - recoverable), ltv_bps,
                    ltv_bps * ltv_cap.denominator > 10_000 * ltv_cap.numerator)


MAX_LTV_BPS = 2**31 - 1


def ltv_basis_points(outstanding: int, value: int) -> int:
    """``outstanding / value`` in basis points rounded half up; capped at ``MAX_LTV_BPS``."""
    if value <= 0:
        return MAX_LTV_BPS
    return min(MAX_LTV_BPS, div_round_half_up(outstanding * 10_000, value))
