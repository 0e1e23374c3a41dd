"""Products, loan terms and payments: the validated inputs of the servicing engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from lienwatch.domain.allocation import Waterfall
from lienwatch.domain.collateral import DEFAULT_LTV_CAPS, DepreciationCurve, VehicleClass
from lienwatch.domain.delinquency import DEFAULT_BUCKETS, BucketScheme
from lienwatch.domain.money import CURRENCY, require_currency
from lienwatch.domain.schedule import (
    DayCount,
    Installment,
    Method,
    build_schedule,
    parse_enum,
    validate_terms,
)


class Overpayment(StrEnum):
    """What a payment does with money beyond the installments due on its date."""

    CREDIT = "credit"  # runs ahead into the next installments; past the last one, credit
    REDUCE_TERM = "reduce-term"  # prepays principal, same installment, fewer of them
    REDUCE_INSTALLMENT = "reduce-installment"  # prepays principal, same term, smaller ones


DEFAULT_WATERFALL = Waterfall()
DEFAULT_CURVE = DepreciationCurve()


@dataclass(frozen=True, slots=True)
class Product:
    """Servicing rules shared by the loans of one product.

    ``late_fee`` is charged once per installment still unpaid (beyond ``tolerance``) at the
    end of its due date plus ``grace_days``. Penalty interest (罚息) accrues daily on overdue
    principal at ``penalty_multiple`` × the contract rate, divided by the day count's year.
    ``grace_days`` also shortens DPD. ``overpayment`` decides what money beyond the
    installments due does (see :class:`Overpayment`; prepayment first settles the next
    installment, then repays principal and re-amortizes the rest). With ``settle_at_payoff``
    a day's payments that cover the early payoff quote of that day (before the last due
    date) settle the loan: interest after that day is waived, what exceeds the quote is
    credit, nothing falls due any more. Amounts in fen.
    """

    name: str = "standard"
    waterfall: Waterfall = DEFAULT_WATERFALL
    grace_days: int = 0
    late_fee: int = 0
    penalty_multiple: Fraction = Fraction(3, 2)
    tolerance: int = 100  # 1.00 CNY
    charge_off_dpd: int = 180
    buckets: BucketScheme = DEFAULT_BUCKETS
    recovery_rate: Fraction = Fraction(7, 10)
    ltv_caps: dict[VehicleClass, Fraction] = field(default_factory=lambda: dict(DEFAULT_LTV_CAPS))
    depreciation: DepreciationCurve = DEFAULT_CURVE
    overpayment: Overpayment = Overpayment.CREDIT
    settle_at_payoff: bool = True

    def __post_init__(self) -> None:
        for name in ("grace_days", "late_fee", "tolerance"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must not be negative, got {getattr(self, name)}")
        if self.penalty_multiple < 0:
            raise ValueError(f"penalty_multiple: must not be negative, got {self.penalty_multiple}")
        if self.charge_off_dpd <= 0:
            raise ValueError(f"charge_off_dpd: must be positive, got {self.charge_off_dpd}")
        if not 0 <= self.recovery_rate <= 1:
            raise ValueError(f"recovery_rate: must be within 0–100 %, got {self.recovery_rate}")
        missing = set(VehicleClass) - set(self.ltv_caps)
        if missing:
            raise ValueError(f"ltv_caps: no cap for {', '.join(sorted(missing))}")
        object.__setattr__(self, "overpayment",
                           parse_enum(Overpayment, self.overpayment, "overpayment"))
        if not isinstance(self.settle_at_payoff, bool):
            raise ValueError(f"settle_at_payoff: must be true or false, got "
                             f"{self.settle_at_payoff!r}")


@dataclass(frozen=True, slots=True)
class LoanTerms:
    """The contract of one loan. ``principal`` and ``upfront_fee`` in fen.

    A financed upfront fee (GPS / service fee) is added to the principal the schedule
    amortizes; a fee paid at signing is settled at disbursement and plays no further part.
    """

    loan_id: str
    principal: int
    annual_rate: Decimal | Fraction
    term: int
    method: Method
    start: date
    day_count: DayCount = DayCount.THIRTY_360
    upfront_fee: int = 0
    fee_financed: bool = False
    currency: str = CURRENCY

    def __post_init__(self) -> None:
        if not self.loan_id:
            raise ValueError("loan_id: must not be empty")
        validate_terms(principal=self.principal, annual_rate=self.annual_rate, term=self.term)
        object.__setattr__(self, "method", parse_enum(Method, self.method, "method"))
        object.__setattr__(self, "day_count", parse_enum(DayCount, self.day_count, "day_count"))
        if self.upfront_fee < 0:
            raise ValueError(f"upfront_fee: must not be negative, got {self.upfront_fee}")
        require_currency(self.currency)

    @property
    def financed_principal(self) -> int:
        """What the schedule amortizes: the principal plus a financed upfront fee."""
        return self.principal + (self.upfront_fee if self.fee_financed else 0)

    def schedule(self) -> list[Installment]:
        """The contractual schedule (see :func:`~lienwatch.domain.schedule.build_schedule`)."""
        return build_schedule(
            principal=self.financed_principal, annual_rate=self.annual_rate, term=self.term,
            method=self.method, start=self.start, day_count=self.day_count,
        )

    def penalty_daily_rate(self, product: Product) -> Fraction:
        """Penalty interest per day per fen of overdue principal."""
        return Fraction(self.annual_rate) * product.penalty_multiple / self.day_count.year_days


@dataclass(frozen=True, slots=True)
class Payment:
    """Money received for a loan, identified by the payer's transaction id."""

    external_id: str
    on: date  # value date, local calendar date of the loan
    amount: int  # fen
    currency: str = CURRENCY

    def __post_init__(self) -> None:
        if not self.external_id:
            raise ValueError("external_id: must not be empty")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount <= 0:
            raise ValueError(f"amount: must be a positive number of fen, got {self.amount!r}")
        require_currency(self.currency)


@dataclass(frozen=True, slots=True)
class Collateral:
    """The financed vehicle as the exposure calculation sees it."""

    price: int  # fen, at purchase
    purchased_on: date
    vehicle_class: VehicleClass = VehicleClass.NEW_ICE

    def __post_init__(self) -> None:
        if self.price <= 0:
            raise ValueError(f"price: must be positive, got {self.price}")

