"""The exact per-loan path: replay a loan's payments in date order and read its state.

Rules (the vectorized portfolio run implements the very same ones):

* Payments are applied in value-date order; payments on the same day act as their sum.
* A payment settles installments oldest first, each by the product's waterfall. By default
  it runs on into installments not yet due (paying ahead) and what exceeds the whole loan
  is credit; a prepayment product instead settles the next installment and repays principal
  with the rest, re-amortizing the remaining installments.
* Penalty interest on an installment accrues daily on its unpaid principal after its due
  date; it is posted (rounded half up to the fen) whenever that principal changes, and the
  running part is rounded the same way when read.
* The late fee of an installment is charged if more than ``tolerance`` of its principal
  plus interest is unpaid at the end of its due date plus the grace days.
* Early payoff: when a day's payments cover the payoff quote of that day before the last
  due date (and the product's ``settle_at_payoff`` is on), the loan is settled: the quote
  repays the principal, the interest earned to that day, penalty and fees; later interest
  is waived, the rest of the money is credit, and nothing falls due any more.
* The state "as of" a date counts every payment with a value date up to and including it.
"""

from __future__ import annotations

import copy
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from lienwatch.domain.allocation import Component
from lienwatch.domain.collateral import Appraisal, Exposure, exposure, vehicle_value
from lienwatch.domain.delinquency import LoanStatus, days_past_due, derive_status
from lienwatch.domain.money import div_round_half_up, format_yuan
from lienwatch.domain.schedule import Installment, amortize, annuity_payment
from lienwatch.errors import LienwatchError
from lienwatch.servicing.product import Collateral, LoanTerms, Overpayment, Payment, Product


class PaymentConflictError(LienwatchError, ValueError):
    """A transaction id seen before arrived again with a different amount or date."""


class PaymentDateError(LienwatchError, ValueError):
    """A payment dated before the loan was disbursed."""


@dataclass(frozen=True, slots=True)
class LoanState:
    """A loan as of a date; amounts in fen."""

    loan_id: str
    as_of: date
    dpd: int
    bucket: str
    status: LoanStatus
    outstanding_principal: int
    overdue_principal: int
    overdue_interest: int
    penalty_accrued: int  # accrued and unpaid
    fees_due: int
    next_due_date: date | None
    payoff_amount: int
    credit: int  # paid beyond the whole loan

    def as_json(self) -> dict[str, object]:
        """The JSON form of ``lienwatch loan state``: amounts as two-decimal strings."""
        return {
            "dpd": self.dpd,
            "bucket": self.bucket,
            "status": self.status.value,
            "outstanding_principal": format_yuan(self.outstanding_principal),
            "overdue_principal": format_yuan(self.overdue_principal),
            "overdue_interest": format_yuan(self.overdue_interest),
            "penalty_accrued": format_yuan(self.penalty_accrued),
            "fees_due": format_yuan(self.fees_due),
            "next_due_date": self.next_due_date.isoformat() if self.next_due_date else None,
            "payoff_amount": format_yuan(self.payoff_amount),
        }


@dataclass(slots=True)
class _Installment:
    """Running state of one installment during replay."""

    due: date
    period_start: date
    principal: int
    interest: int
    paid_principal: int = 0
    paid_interest: int = 0
    fee: int = 0
    paid_fee: int = 0
    penalty_posted: int = 0
    paid_penalty: int = 0
    accrue_from: date | None = None  # None: the due date
    fee_checked: bool = False

    @property
    def unpaid_contract(self) -> int:
        return self.principal - self.paid_principal + self.interest - self.paid_interest

    def penalty_until(self, day: date, daily_rate: Fraction) -> int:
        """Penalty accrued up to ``day`` (posted plus the running part), paid or not."""
        start = max(self.due, self.accrue_from or self.due)
        days = (day - start).days
        if days <= 0:
            return self.penalty_posted
        running = (self.principal - self.paid_principal) * days * daily_rate.numerator
        return self.penalty_posted + div_round_half_up(running, daily_rate.denominator)

    def owed(self, day: date, daily_rate: Fraction) -> dict[Component, int]:
        return {
            Component.PENALTY: self.penalty_until(day, daily_rate) - self.paid_penalty,
            Component.FEE: self.fee - self.paid_fee,
            Component.INTEREST: self.interest - self.paid_interest,
            Component.PRINCIPAL: self.principal - self.paid_principal,
        }


class _Replay:
    """The mutable machine that applies one day's payments after another."""

    def __init__(self, terms: LoanTerms, product: Product) -> None:
        self.terms = terms
        self.product = product
        self.rate = Fraction(terms.annual_rate)
        self.daily_rate = terms.penalty_daily_rate(product)
        schedule = terms.schedule()
        starts = [terms.start, *(row.due_date for row in schedule)]
        self.rows = [
            _Installment(row.due_date, period_start, row.principal, row.interest)
            for row, period_start in zip(schedule, starts, strict=False)
        ]
        self.maturity = schedule[-1].due_date
        # what a reduce-term prepayment keeps: the regular installment or principal part
        self.regular = annuity_payment(terms.financed_principal, self.rate / 12, terms.term)
        self.fixed_part = terms.financed_principal // terms.term
        self.frontier = 0  # every installment before it is settled in full
        self.credit = 0
        self.settled_on: date | None = None  # the day an early payoff settled the loan

    def pay(self, day: date, amount: int) -> None:
        """Apply ``amount`` fen received on ``day`` (not before the last day applied)."""
        if self.settled_on is not None:
            self.credit += amount
            return
        self._charge_fees(before=day)
        if self._pays_off(day, amount):
            self.credit += amount - self._payoff_quote(day)
            self.settled_on = day
            # the payoff repays the principal of every later row: they never fall due
            self.rows = [row for row in self.rows if row.due <= day]
            return
        if self.product.overpayment is Overpayment.CREDIT:
            amount = self._settle(day, amount, len(self.rows))
        else:
            # installments due by ``day`` and the next one; the rest prepays principal
            due_by_day = sum(1 for row in self.rows if row.due <= day)
            amount = self._settle(day, amount, due_by_day + 1)
            if amount and self.frontier < len(self.rows):
                amount = self._prepay(amount)
        self.credit += amount

    def _pays_off(self, day: date, amount: int) -> bool:
        """Whether ``amount`` received on ``day`` settles the loan at its payoff quote: only
        while some interest is still unearned (on or after the last due date the ordinary
        allocation already collects exactly what is owed)."""
        if not (self.product.settle_at_payoff and self.frontier < len(self.rows)
                and day < self.rows[-1].due):
            return False
        # cheap bound first: the quote is at least the unpaid principal less the interest
        # paid on installments not yet due (penalty, fees and earned interest only add)
        unpaid = sum(row.principal - row.paid_principal for row in self.rows)
        paid_ahead = sum(row.paid_interest for row in self.rows if row.due > day)
        return amount >= unpaid - paid_ahead and amount >= self._payoff_quote(day)

    def _payoff_quote(self, day: date) -> int:
        """Outstanding principal + interest earned to ``day`` − interest paid + penalty +
        fees − credit, with the fees charged so far."""
        outstanding, penalty, fees = self._balances(day)
        return max(0, outstanding + self._interest_earned(day) + penalty + fees
                   - sum(row.paid_interest for row in self.rows) - self.credit)

    def _balances(self, day: date) -> tuple[int, int, int]:
        """Unpaid principal, penalty accrued to ``day`` and fees charged, all unpaid."""
        return (sum(row.principal - row.paid_principal for row in self.rows),
                sum(row.penalty_until(day, self.daily_rate) - row.paid_penalty
                    for row in self.rows),
                sum(row.fee - row.paid_fee for row in self.rows))

    def _settle(self, day: date, amount: int, limit: int) -> int:
        """Settle installments oldest first, up to index ``limit``; return what is left."""
        while amount and self.frontier < min(limit, len(self.rows)):
            row = self.rows[self.frontier]
            owed = row.owed(day, self.daily_rate)
            got, amount = self.product.waterfall.settle(amount, owed)
            if got[Component.PRINCIPAL]:
                row.penalty_posted = row.penalty_until(day, self.daily_rate)
                row.accrue_from = max(day, row.due)
            row.paid_penalty += got[Component.PENALTY]
            row.paid_fee += got[Component.FEE]
            row.paid_interest += got[Component.INTEREST]
            row.paid_principal += got[Component.PRINCIPAL]
            if got != owed:
                break
            self.frontier += 1
        return amount

    def _prepay(self, amount: int) -> int:
        """Repay principal of the (untouched) installments from the frontier on and
        re-amortize them by the product's policy; return what exceeds the principal."""
        rest = self.rows[self.frontier:]
        outstanding = sum(row.principal for row in rest)
        prepaid = min(amount, outstanding)
        balance = outstanding - prepaid
        periods = [(row.period_start, row.due) for row in rest]
        if self.product.overpayment is Overpayment.REDUCE_INSTALLMENT:
            self.regular = annuity_payment(balance, self.rate / 12, len(rest))
            self.fixed_part = balance // len(rest)
        rows = amortize(
            principal=balance, annual_rate=self.rate, periods=periods,
            method=self.terms.method, day_count=self.terms.day_count, regular=self.regular,
            fixed_part=self.fixed_part,
            shorten=self.product.overpayment is Overpayment.REDUCE_TERM,
        ) if balance else []
        self.rows[self.frontier:] = [
            _Installment(row.due_date, start, row.principal, row.interest)
            for row, (start, _) in zip(rows, periods, strict=False)
        ]
        return amount - prepaid

    def _charge_fees(self, *, before: date) -> None:
        """Charge late fees of installments whose grace ended on a day before ``before``."""
        for row in self.rows:
            if (before - row.due).days <= self.product.grace_days:
                break
            if not row.fee_checked:
                row.fee_checked = True
                if row.unpaid_contract > self.product.tolerance:
                    row.fee = self.product.late_fee

    def state(self, as_of: date, manual: LoanStatus | None) -> LoanState:
        """Read the state at the end of ``as_of`` (no payment after it may have been applied)."""
        if self.settled_on is not None:
            return self._settled_state(as_of, manual)
        self._charge_fees(before=as_of + timedelta(days=1))
        overdue = [row for row in self.rows if row.due < as_of]
        oldest = next((row.due for row in self.rows[self.frontier:] if row.due <= as_of
                       and row.unpaid_contract > self.product.tolerance), None)
        dpd = days_past_due(as_of, oldest, self.product.grace_days)
        outstanding, penalty, fees = self._balances(as_of)
        paid_in_full = outstanding == 0 and penalty == 0 and fees == 0 and all(
            row.interest == row.paid_interest for row in self.rows)
        status = derive_status(
            dpd=dpd, paid_in_full=paid_in_full, matured=as_of >= self.maturity,
            charge_off_dpd=self.product.charge_off_dpd, manual=manual)
        upcoming = next((row.due for row in self.rows[self.frontier:] if row.due >= as_of), None)
        return LoanState(
            loan_id=self.terms.loan_id,
            as_of=as_of,
            dpd=dpd,
            bucket=self.product.buckets.name_for(dpd),
            status=status,
            outstanding_principal=outstanding,
            overdue_principal=sum(row.principal - row.paid_principal for row in overdue),
            overdue_interest=sum(row.interest - row.paid_interest for row in overdue),
            penalty_accrued=penalty,
            fees_due=fees,
            next_due_date=None if paid_in_full else upcoming,
            payoff_amount=self._payoff_quote(as_of),
            credit=self.credit,
        )

    def _settled_state(self, as_of: date, manual: LoanStatus | None) -> LoanState:
        """A loan settled by early payoff: nothing owed, only its credit left."""
        status = derive_status(dpd=0, paid_in_full=True, matured=False,
                               charge_off_dpd=self.product.charge_off_dpd, manual=manual)
        return LoanState(
            loan_id=self.terms.loan_id, as_of=as_of, dpd=0,
            bucket=self.product.buckets.name_for(0), status=status, outstanding_principal=0,
            overdue_principal=0, overdue_interest=0, penalty_accrued=0, fees_due=0,
            next_due_date=None, payoff_amount=0, credit=self.credit,
        )

    def _interest_earned(self, as_of: date) -> int:
        """Interest of installments due by ``as_of`` plus the running period's share to date."""
        earned = 0
        for row in self.rows:
            if row.due <= as_of:
                earned += row.interest
            else:
                elapsed = max(0, (as_of - row.period_start).days)
                share = Fraction(row.interest * elapsed, (row.due - row.period_start).days)
                return earned + div_round_half_up(share.numerator, share.denominator)
        return earned


def _daily_totals(terms: LoanTerms, payments: Iterable[Payment]) -> list[tuple[date, int]]:
    totals: dict[date, int] = {}
    for payment in payments:
        if payment.on < terms.start:
            raise PaymentDateError(
                f"payment {payment.external_id}: date {payment.on} is before the loan's "
                f"disbursement on {terms.start}")
        totals[payment.on] = totals.get(payment.on, 0) + payment.amount
    return sorted(totals.items())


def loan_state(
    terms: LoanTerms, product: Product, payments: Iterable[Payment], as_of: date,
    *, manual_status: LoanStatus | None = None,
) -> LoanState:
    """The state of a loan as of ``as_of`` recomputed from scratch from all its payments.

    Payments dated after ``as_of`` are ignored. Raises :class:`PaymentDateError` for a
    payment before disbursement and :class:`ValueError` for an ``as_of`` before it.
    """
    return _replay_until(terms, product, payments, as_of).state(as_of, manual_status)


def _replay_until(
    terms: LoanTerms, product: Product, payments: Iterable[Payment], as_of: date
) -> _Replay:
    if as_of < terms.start:
        raise ValueError(f"as_of: {as_of} is before the loan's disbursement on {terms.start}")
    replay = _Replay(terms, product)
    for day, amount in _daily_totals(terms, payments):
        if day > as_of:
            break
        replay.pay(day, amount)
    return replay


def current_schedule(
    terms: LoanTerms, product: Product, payments: Iterable[Payment], as_of: date
) -> list[Installment]:
    """The loan's schedule after the payments up to ``as_of``: the contract's, or the one a
    prepayment re-amortized. Principal repaid by prepayments is in no row (and rows it
    repaid in full are left out); ``balance_after`` is what the later rows still repay."""
    replay = _replay_until(terms, product, payments, as_of)
    rows: list[Installment] = []
    balance = sum(row.principal for row in replay.rows)
    for n, row in enumerate(replay.rows, start=1):
        balance -= row.principal
        rows.append(Installment(n, row.due, row.principal, row.interest, balance))
    return rows


def loan_exposure(
    state: LoanState, product: Product, collateral: Collateral,
    appraisals: Iterable[Appraisal] = (),
) -> Exposure:
    """Exposure at default, recoverable collateral value, unsecured part and LTV of a loan."""
    value = vehicle_value(collateral.price, collateral.purchased_on, state.as_of,
                          tuple(appraisals), product.depreciation)
    return exposure(
        outstanding_principal=state.outstanding_principal,
        overdue_interest=state.overdue_interest, penalty=state.penalty_accrued,
        fees=state.fees_due, collateral_value=value, recovery_rate=product.recovery_rate,
        ltv_cap=product.ltv_caps[collateral.vehicle_class],
    )


class LoanAccount:
    """One loan's payment history, kept in date order, with checkpoints for fast replay.

    Posting is idempotent by ``external_id``. A payment arriving in date order is applied on
    top of the last checkpoint; a backdated payment or a reversal rewinds to the checkpoint
    before its date and replays what follows, so the state is always what it would have
    been had every payment arrived on time.
    """

    def __init__(self, terms: LoanTerms, product: Product) -> None:
        self.terms = terms
        self.product = product
        self._payments: dict[str, Payment] = {}
        self._reversed: set[str] = set()
        self._manual: list[tuple[date, LoanStatus]] = []
        # checkpoint i: the replay after applying every payment of days[0..i]
        self._days: list[date] = []
        self._checkpoints: list[_Replay] = []

    @property
    def payments(self) -> tuple[Payment, ...]:
        """Live (not reversed) payments in value-date order."""
        live = (p for i, p in self._payments.items() if i not in self._reversed)
        return tuple(sorted(live, key=lambda p: p.on))

    def post(self, payment: Payment) -> bool:
        """Apply ``payment``; return ``False`` when the same transaction was already posted.

        Raises :class:`PaymentConflictError` if its id was posted with another amount or
        date, :class:`PaymentDateError` if it predates disbursement. Nothing is applied then.
        """
        seen = self._payments.get(payment.external_id)
        if seen is not None:
            if (seen.amount, seen.on) != (payment.amount, payment.on):
                raise PaymentConflictError(
                    f"payment {payment.external_id}: already posted as {format_yuan(seen.amount)}"
                    f" on {seen.on}, now {format_yuan(payment.amount)} on {payment.on}")
            return False
        _daily_totals(self.terms, [payment])
        self._payments[payment.external_id] = payment
        self._rewind(payment.on)
        return True

    def reverse(self, external_id: str) -> bool:
        """Undo a posted payment (bounced); ``False`` if it was already reversed.

        Raises :class:`KeyError` for an id never posted.
        """
        if external_id not in self._payments:
            raise KeyError(f"external_id: no payment {external_id!r} on loan {self.terms.loan_id}")
        if external_id in self._reversed:
            return False
        self._reversed.add(external_id)
        self._rewind(self._payments[external_id].on)
        return True

    def set_status(self, status: LoanStatus, on: date) -> None:
        """Record an operator's terminal status (repossessed, settled, written-off) from ``on``."""
        derive_status(dpd=0, paid_in_full=False, matured=False, charge_off_dpd=1, manual=status)
        self._manual.append((on, status))
        self._manual.sort(key=lambda item: item[0])

    def state(self, as_of: date) -> LoanState:
        """The loan as of the end of ``as_of``."""
        if as_of < self.terms.start:
            raise ValueError(
                f"as_of: {as_of} is before the loan's disbursement on {self.terms.start}")
        self._catch_up()
        known = bisect_right(self._days, as_of)
        replay = (copy.deepcopy(self._checkpoints[known - 1]) if known
                  else _Replay(self.terms, self.product))
        manual = [status for on, status in self._manual if on <= as_of]
        return replay.state(as_of, manual[-1] if manual else None)

    def _rewind(self, day: date) -> None:
        """Drop the checkpoints from ``day`` on; the next read replays from the one before."""
        keep = bisect_left(self._days, day)
        del self._days[keep:]
        del self._checkpoints[keep:]

    def _catch_up(self) -> None:
        """Extend the checkpoints over every day with payments after the last checkpoint."""
        totals = _daily_totals(self.terms, self.payments)
        last = self._days[-1] if self._days else None
        replay = self._checkpoints[-1] if self._checkpoints else _Replay(self.terms, self.product)
        for day, amount in totals:
            if last is not None and day <= last:
                continue
            replay = copy.deepcopy(replay)
            replay.pay(day, amount)
            self._days.append(day)
            self._checkpoints.append(replay)
