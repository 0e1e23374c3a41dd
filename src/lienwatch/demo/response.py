"""The simulated borrowers answer the follow-up: the contacts the engine's agents recorded
each operated day go through the simulator's contact-response model
(:mod:`lienwatch.sim.response`), and a borrower who responds pays the arrears a few days
later, posted like any bank payment. Only what is in the store drives it (the agents'
recorded calls and visits, the loan's last nightly snapshot): the borrowers do not know
which arm their case is in, only when, and whether, someone reached them."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from lienwatch.followup.model import Channel, Outcome
from lienwatch.services.payments import post_payment
from lienwatch.sim.payments import bank_account
from lienwatch.sim.records import Profile
from lienwatch.sim.response import ContactResponse
from lienwatch.store.tables import Action, Case, Loan, LoanSnapshot, Promise

#: What reaches the borrower in person: the conversations the model responds to.
REACHED = (Outcome.RIGHT_PARTY_CONTACT.value, Outcome.PROMISE_TO_PAY.value)
CONTACTS = (Channel.CALL.value, Channel.VISIT.value)
#: A responding borrower pays the overdue total of the last snapshot plus this share, for the
#: penalty interest of the days until the payment (the rest is credit for the next
#: installment).
PENALTY_MARGIN = 0.02


@dataclass(frozen=True, slots=True)
class _Due:
    loan_id: int
    case_id: int
    paid_on: date
    amount: int


class BorrowerResponses:
    """The borrowers' side of the operated days; ``profiles`` maps a loan reference to the
    latent type the simulator gave it (the borrower's own, never shown to the engine)."""

    def __init__(self, profiles: Mapping[str, str], *, model: ContactResponse | None = None,
                 seed: int = 7) -> None:  # fmt: skip
        self.profiles = {ref: Profile(p) for ref, p in profiles.items()}
        self.model = model or ContactResponse()
        self.rng = np.random.default_rng([seed, 16])
        self.answered: set[int] = set()  # cases whose borrower has drawn a response
        self.pending: list[_Due] = []
        self.responders: list[int] = []  # cases whose borrower will pay because of a contact

    def respond(self, session: Session, *, day: date, since: datetime, until: datetime,
                planned: dict[int, list[tuple[date, int]]]) -> int:  # fmt: skip
        """Draw the response of each borrower an agent reached in [``since``, ``until``) on
        ``day`` (a case once); a borrower who will pay adds the payment to ``planned`` (what
        each loan will pay, as the demo's borrower answers read it). Returns how many will."""
        rows = session.execute(
            select(Action.case_id, Case.loan_id, Loan.ref, Promise.promised_on)
            .join(Case, Case.id == Action.case_id).join(Loan, Loan.id == Case.loan_id)
            .outerjoin(Promise, Promise.action_id == Action.id)
            .where(Action.performed_by.is_not(None), Action.kind.in_(CONTACTS),
                   Action.outcome.in_(REACHED), Action.performed_at >= since,
                   Action.performed_at < until)
            .order_by(Action.performed_at, Action.id)
        ).all()  # fmt: skip
        fresh = [row for row in rows if row.case_id not in self.answered]
        late = _days_past_due(session, {row.loan_id for row in fresh}, day)
        will = 0
        for case_id, loan_id, ref, promised_on in fresh:
            self.answered.add(case_id)
            dpd, overdue = late.get(loan_id, (0, 0))
            if overdue <= 0 or _pays_soon(planned.get(loan_id, []), day, self.model.max_lag_days):
                continue  # nothing to cure, or the borrower pays in these days anyway
            profile = self.profiles.get(ref, Profile.ON_TIME)
            paid_on = self.model.pays_on(self.rng, profile, dpd, day, promised_on)
            if paid_on is None:
                continue
            amount = int(overdue * (1 + PENALTY_MARGIN))
            self.pending.append(_Due(loan_id, case_id, paid_on, amount))
            bisect.insort(planned.setdefault(loan_id, []), (paid_on, amount))
            self.responders.append(case_id)
            will += 1
        return will

    def pay(self, session: Session, *, day: date, at: datetime) -> int:
        """Post the responses falling due on or before ``day`` (received ``at``, the end of
        that day, from the borrower's own account); returns how many were posted."""
        due, self.pending = _split(self.pending, lambda d: d.paid_on <= day)
        for item in due:
            loan = session.get_one(Loan, item.loan_id)
            borrower = loan.borrower
            post_payment(session, loan=loan, external_id=f"{loan.ref}-R{item.case_id}",
                         paid_on=item.paid_on, amount=item.amount, channel="transfer", by=None,
                         at=at, payer_account=bank_account(borrower.ref),
                         payer_name=borrower.name)  # fmt: skip
        return len(due)

    def counts(self, session: Session) -> dict[str, Any]:
        """How many cases an agent reached, how many borrowers paid because of it and how
        many of those payments are in the book, with the responders by arm (read from the
        cases after the fact: the effect of the order each arm's queue followed)."""
        arms = Counter(arm or "champion" for arm in session.scalars(
            select(Case.arm).where(Case.id.in_(self.responders)))) if self.responders else {}
        return {"cases_reached": len(self.answered), "responded": len(self.responders),
                "response_payments": len(self.responders) - len(self.pending),
                "responded_by_arm": {arm: arms.get(arm, 0) for arm in ("champion", "challenger")}}


def _days_past_due(session: Session, loan_ids: set[int], day: date) -> dict[int, tuple[int, int]]:
    """Each loan's days past due on ``day`` and its overdue total (fen), from its last nightly
    snapshot before ``day``."""
    if not loan_ids:
        return {}
    latest = (select(LoanSnapshot.loan_id, func.max(LoanSnapshot.as_of).label("as_of"))
              .where(LoanSnapshot.loan_id.in_(loan_ids), LoanSnapshot.as_of < day)
              .group_by(LoanSnapshot.loan_id).subquery())  # fmt: skip
    rows = session.execute(
        select(LoanSnapshot).join(latest, and_(LoanSnapshot.loan_id == latest.c.loan_id,
                                               LoanSnapshot.as_of == latest.c.as_of))
    ).scalars()  # fmt: skip
    return {
        s.loan_id: (
            s.dpd + (day - s.as_of).days if s.dpd > 0 else 0,
            s.overdue_principal + s.overdue_interest + s.penalty_accrued + s.fees_due,
        )
        for s in rows
    }


def _split(items: list[_Due], due: Callable[[_Due], bool]) -> tuple[list[_Due], list[_Due]]:
    """(the items that are due, the rest), in one pass."""
    parts: tuple[list[_Due], list[_Due]] = ([], [])
    for item in items:
        parts[0 if due(item) else 1].append(item)
    return parts


def _pays_soon(planned: list[tuple[date, int]], day: date, days: int) -> bool:
    i = bisect.bisect_left(planned, (day, -1))
    return i < len(planned) and (planned[i][0] - day).days <= days
