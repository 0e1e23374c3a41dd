"""Payment histories by profile, built on the loan's schedule from the domain rules."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np

from lienwatch.domain.calendar import add_months
from lienwatch.domain.schedule import Installment, Method, build_schedule
from lienwatch.servicing.engine import loan_state
from lienwatch.servicing.product import LoanTerms, Payment, Product
from lienwatch.sim.book import LoanPlan
from lienwatch.sim.identity import person_name
from lienwatch.sim.records import Profile, SimBorrower, SimLoan, SimPayment
from lienwatch.sim.stories import Story

# Days from due date to payment for a payer in good standing: early or on the day. (A day
# late would owe penalty interest the installment amount does not cover.)
_ON_TIME_OFFSETS = np.array([-3, -2, -1, 0])
_ON_TIME_P = np.array([0.1, 0.12, 0.2, 0.58])
#: A late-then-cures episode starts on an installment due at least this many days before the
#: business date (the nightly runs have seen it late).
OPEN_EPISODE_MIN_DPD = 2


@dataclass(frozen=True, slots=True)
class Delinquency:
    """How a loan fell behind, for the ground truth."""

    label: str  # "delinquent" (cures, or will after the book) or "default"
    first_missed_due: date
    cured_on: date | None = None  # None for a "delinquent" still behind on the business date
    last_payment_on: date | None = None
    missed_installments: int = 0


def schedule_of(plan: LoanPlan) -> list[Installment]:
    """The loan's repayment schedule (``lienwatch.domain.schedule``)."""
    loan = plan.loan
    return build_schedule(
        principal=loan.principal,
        annual_rate=loan.annual_rate,
        term=loan.term,
        method=Method(loan.method),
        start=loan.disbursed_on,
    )


class _Payer:
    def __init__(self, rng: np.random.Generator, plan: LoanPlan, as_of: date) -> None:
        self.rng = rng
        self.plan = plan
        self.as_of = as_of
        self.rows = [r for r in schedule_of(plan) if r.due_date < as_of]
        self.payments: list[SimPayment] = []

    def pay(self, on: date, amount: int, channel: str) -> None:
        on = min(
            max(on, self.plan.loan.disbursed_on + timedelta(days=1)), self.as_of - timedelta(days=1)
        )
        ref = f"{self.plan.loan.ref}-P{len(self.payments) + 1:03d}"
        self.payments.append(SimPayment(ref, self.plan.loan.ref, on, amount, channel))

    def on_time(self, rows: list[Installment]) -> None:
        offsets = self.rng.choice(_ON_TIME_OFFSETS, len(rows), p=_ON_TIME_P)
        for row, days in zip(rows, offsets, strict=True):
            channel = "bank_debit" if days == 0 or self.rng.random() < 0.5 else "transfer"
            self.pay(row.due_date + timedelta(days=int(days)), row.payment, channel)

    def late_then_cure(self) -> Delinquency | None:
        """Miss the installments falling due over 30–90 days, then pay them all at once. One
        of the last six installments due before the business date starts it, so some
        borrowers are still behind on that date: their cure lies beyond the book (unless a
        collector's call brings it forward, :mod:`lienwatch.sim.response`)."""
        dpd = int(self.rng.integers(30, 91))
        latest_start = self.as_of - timedelta(days=OPEN_EPISODE_MIN_DPD)
        candidates = [i for i, r in enumerate(self.rows) if i > 0 and r.due_date <= latest_start]
        if not candidates:
            self.on_time(self.rows)
            return None
        first = candidates[max(0, len(candidates) - int(self.rng.integers(1, 7)))]
        cured_on = self.rows[first].due_date + timedelta(days=dpd)
        self.on_time(self.rows[:first])
        if cured_on >= self.as_of:  # still behind on the business date
            return Delinquency("delinquent", self.rows[first].due_date,
                               missed_installments=len(self.rows) - first)  # fmt: skip
        missed = [r for r in self.rows[first:] if r.due_date < cured_on]
        self.pay(cured_on, self._amount_due(cured_on), str(self.rng.choice(["transfer", "cash"])))
        self.on_time(self.rows[first + len(missed) :])
        return Delinquency(
            "delinquent",
            self.rows[first].due_date,
            cured_on=cured_on,
            missed_installments=len(missed),
        )

    def _amount_due(self, on: date) -> int:
        """What the lender asks for on ``on``: overdue principal and interest, penalty interest
        and fees, as the servicing rules (default product) compute them."""
        loan = self.plan.loan
        terms = LoanTerms(
            loan.ref, loan.principal, loan.annual_rate, loan.term, Method(loan.method),
            loan.disbursed_on,
        )  # fmt: skip
        paid = [Payment(p.external_id, p.paid_on, p.amount) for p in self.payments]
        state = loan_state(terms, Product(), paid, on)
        overdue = state.overdue_principal + state.overdue_interest
        return overdue + state.penalty_accrued + state.fees_due

    def slide(self) -> Delinquency | None:
        """Pay normally, then part of one to three installments, then nothing."""
        window = [
            i
            for i, r in enumerate(self.rows)
            if i > 0
            and self.as_of - timedelta(days=240) <= r.due_date <= self.as_of - timedelta(days=120)
        ]
        if not window:
            self.on_time(self.rows)
            return None
        first = int(self.rng.choice(window))
        self.on_time(self.rows[:first])
        partial = self.rows[first : first + int(self.rng.integers(1, 4))]
        for row in partial:
            share = self.rng.uniform(0.3, 0.7)
            self.pay(
                row.due_date + timedelta(days=int(self.rng.integers(0, 11))),
                int(row.payment * share),
                "transfer",
            )
        return Delinquency(
            "default",
            self.rows[first].due_date,
            last_payment_on=self.payments[-1].paid_on,
            missed_installments=len(self.rows) - first,
        )

    def stop_on(self, stop: date | None) -> Delinquency | None:
        """Pay on time every installment due before ``stop``; nothing afterwards."""
        paying = [r for r in self.rows if stop is None or r.due_date < stop]
        self.on_time(paying)
        if len(paying) == len(self.rows):
            return None
        return Delinquency(
            "default",
            self.rows[len(paying)].due_date,
            last_payment_on=self.payments[-1].paid_on if self.payments else None,
            missed_installments=len(self.rows) - len(paying),
        )


def simulate_payments(
    rng: np.random.Generator, plan: LoanPlan, story: Story, as_of: date
) -> tuple[list[SimPayment], Delinquency | None]:
    """The payments of one loan before ``as_of`` and, if it fell behind, how."""
    payer = _Payer(rng, plan, as_of)
    if plan.profile is Profile.LATE_THEN_CURES:
        delinquency = payer.late_then_cure()
    elif plan.profile is Profile.SLIDES_INTO_DEFAULT:
        delinquency = payer.slide()
    else:
        delinquency = payer.stop_on(story.stop_paying_on)
    return payer.payments, delinquency


#: Days the lender takes to release the mortgage registration of a loan paid in full.
RELEASE_DAYS = 7


def released_when_paid(
    loan: SimLoan, paid: list[SimPayment], delinquency: Delinquency | None, as_of: date
) -> SimLoan:
    """``loan`` with its registration released a week after its last payment when it has
    matured before ``as_of`` and was paid (on time, or late and cured)."""
    matured = add_months(loan.disbursed_on, loan.term) < as_of
    defaulted = delinquency is not None and delinquency.label == "default"
    if not (matured and paid and not defaulted and loan.registered_on):
        return loan
    released = max(p.paid_on for p in paid) + timedelta(days=RELEASE_DAYS)
    return replace(loan, registration_released_on=released) if released < as_of else loan


#: Shares of the paying loans whose money comes from someone else, as lenders see it: a
#: relative who pays every installment, a relative who steps in once, and a broker's account
#: paying one installment each for ``BROKER_GROUP`` borrowers (the shared-payer pattern).
RELATIVE_PAYS_ALL, RELATIVE_STEPS_IN, BROKER_SHARE, BROKER_GROUP = 0.03, 0.04, 0.02, 4


def bank_account(key: str) -> str:
    """A 19-digit debit card number (UnionPay 62 prefix) fixed by ``key``."""
    digits = str(int(hashlib.sha256(key.encode()).hexdigest()[:16], 16)).zfill(17)[-17:]
    return "62" + digits


def with_payers(rng: np.random.Generator, payments: list[SimPayment],
                owners: dict[str, SimBorrower]) -> list[SimPayment]:  # fmt: skip
    """``payments`` with who paid them: mostly the borrower from their own account, and for
    some loans a third party (see :data:`RELATIVE_PAYS_ALL`); ``owners`` maps a loan to its
    borrower. The payments keep their order; ``rng`` is the payers' own stream."""
    by_loan: dict[str, list[int]] = {}
    for k, payment in enumerate(payments):
        by_loan.setdefault(payment.loan_ref, []).append(k)
    loans = [str(ref) for ref in rng.permutation(sorted(by_loan))]
    counts = [round(share * len(loans)) for share in (RELATIVE_PAYS_ALL, RELATIVE_STEPS_IN)]
    pays_all = set(loans[: counts[0]])
    steps_in = set(loans[counts[0]: counts[0] + counts[1]])
    brokered = loans[sum(counts): sum(counts) + round(BROKER_SHARE * len(loans))]
    broker = {ref: n // BROKER_GROUP for n, ref in enumerate(brokered)}
    out = []
    for payment in payments:
        owner = owners[payment.loan_ref]
        account, name = bank_account(owner.ref), owner.name
        if payment.loan_ref in pays_all or (
            payment.loan_ref in steps_in and by_loan[payment.loan_ref][-1] == len(out)
        ):
            account, name = bank_account(f"relative:{owner.ref}"), _relative(rng, owner)
        elif payment.loan_ref in broker and by_loan[payment.loan_ref][-1] == len(out):
            group = broker[payment.loan_ref]
            account, name = bank_account(f"broker:{group}"), f"车贷服务部{group + 1:03d}"
        out.append(replace(payment, payer_account=account, payer_name=name))
    return out


def _relative(rng: np.random.Generator, owner: SimBorrower) -> str:
    """A relative's name: the borrower's surname (a person) or a director's (a company)."""
    name = person_name(rng)
    return owner.name[0] + name[1:] if owner.kind == "person" else name
