"""Repossession and disposal on the store (收车与处置).

:class:`RepossessionService` holds the verbs, keyword-only and never committing (the caller
owns the transaction): :meth:`~RepossessionService.order`, :meth:`~RepossessionService.approve`,
:meth:`~RepossessionService.record_recovery`, :meth:`~RepossessionService.add_cost`,
:meth:`~RepossessionService.record_appraisal`, :meth:`~RepossessionService.record_sale`,
:meth:`~RepossessionService.post_proceeds`, :meth:`~RepossessionService.return_surplus` and
:meth:`~RepossessionService.write_off`.
Each step the repossession waits for is a ``repossession_steps`` row under its SLA, opened
when the step before it is taken and closed when it is taken, in the same transaction; the
follow-up watchdog escalates and breaches those rows and coverage counts them. Each step taken is
also logged on the case's timeline with who did it, when, and whether it met its SLA
(``late``); the rules themselves are in :mod:`lienwatch.followup.repossession`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.config import RepossessionSettings
from lienwatch.errors import NotFoundError
from lienwatch.followup.model import CaseStatus, FollowupError
from lienwatch.followup.repossession import (
    COST_KINDS,
    COSTS_OPEN,
    FINAL,
    NEXT_STEP,
    SUPERVISOR_STEPS,
    Disposal,
    RepossessionPolicy,
    RepoStatus,
    allocate_proceeds,
    check_approval,
    check_order,
    check_step,
    policy_from_settings,
)
from lienwatch.services.followup import FollowupService
from lienwatch.services.payments import post_payment
from lienwatch.services.timeline import log_action
from lienwatch.store.repositories import LoanRepository
from lienwatch.store.repossession import (
    ACTION_KIND,
    costs_total,
    latest_snapshot,
    open_step,
    overdue_steps,
    timeline,
)
from lienwatch.store.tables import (
    Action,
    Case,
    Loan,
    LoanSnapshot,
    Repossession,
    RepossessionCost,
    RepossessionStep,
    User,
)


class RepossessionService:
    """The repossession verbs on one session; the caller owns the transaction.

    Case status changes go through ``followup`` (the case status machine and its timeline).
    """

    def __init__(
        self,
        session: Session,
        *,
        followup: FollowupService,
        policy: RepossessionPolicy,
        jurisdiction: str = "cn",
    ) -> None:
        if jurisdiction not in policy.routes:
            raise FollowupError(f"jurisdiction: no legal routes configured for {jurisdiction!r}")
        self.session = session
        self.followup = followup
        self.policy = policy
        self.jurisdiction = jurisdiction

    @classmethod
    def from_settings(
        cls, session: Session, settings: RepossessionSettings, *, followup: FollowupService
    ) -> RepossessionService:
        return cls(
            session,
            followup=followup,
            policy=policy_from_settings(settings),
            jurisdiction=settings.jurisdiction,
        )

    # ------------------------------------------------------------------ order and approval

    def order(
        self, *, loan_id: int, route: str, legal_ref: str, by: str, at: datetime, why: str
    ) -> Repossession:
        """Order the repossession of a loan with an open case. Refused (FollowupError naming
        the rule) below the DPD floor of the latest nightly snapshot, on a snapshot too old to
        prove it, through a route the jurisdiction does not allow, and always for self-help."""
        _check_aware(at)
        if not why.strip():
            raise FollowupError("why: a repossession order needs a reason")
        user = self._user(by)
        case = self._open_case(loan_id)
        snapshot = self._latest_snapshot(loan_id, self._local_day(at))
        check_order(
            self.policy,
            jurisdiction=self.jurisdiction,
            route=route,
            dpd=snapshot.dpd,
            legal_ref=legal_ref,
        )
        if self.session.scalar(select(Repossession.id).where(Repossession.case_id == case.id)):
            raise FollowupError(f"loan_id: case {case.id} already has a repossession order")
        repo = Repossession(
            case_id=case.id,
            loan_id=loan_id,
            jurisdiction=self.jurisdiction,
            route=route,
            legal_ref=legal_ref.strip(),
            status=RepoStatus.ORDERED.value,
            dpd_at_order=snapshot.dpd,
            snapshot_on=snapshot.as_of,
            ordered_by=user.id,
            ordered_at=at,
        )
        self.session.add(repo)
        self.session.flush()
        self._open_step(repo, at)
        self._log(repo, case, "order", user, at, why,
                  {"route": route, "legal_ref": repo.legal_ref, "dpd": snapshot.dpd,
                   "snapshot_on": snapshot.as_of.isoformat()})  # fmt: skip
        return repo

    def approve(
        self, *, repossession_id: int, by: str, assignee: str, at: datetime
    ) -> Repossession:
        """A supervisor (not the one who ordered it) approves and assigns the recovery. The DPD
        is checked again on the latest snapshot (a loan that cured since is refused), and the
        case moves to ``repossession`` (through ``escalated`` if it was not there yet)."""
        repo = self._get(repossession_id)
        check_step(repo.status, RepoStatus.ORDERED, "approve")
        approver, agent = self._user(by), self._user(assignee)
        orderer = self.session.get_one(User, repo.ordered_by)
        check_approval(approver_role=approver.role, approver=by, ordered_by=orderer.username)
        snapshot = self._latest_snapshot(repo.loan_id, self._local_day(at))
        check_order(self.policy, jurisdiction=repo.jurisdiction, route=repo.route,
                    dpd=snapshot.dpd, legal_ref=repo.legal_ref)  # fmt: skip
        case = self.session.get_one(Case, repo.case_id)
        if case.status in (CaseStatus.NEW, CaseStatus.IN_PROGRESS):
            self.followup.change_status(
                case_id=case.id, status=CaseStatus.ESCALATED, by=by, why="repossession approved",
                at=at,
            )
        self.followup.change_status(
            case_id=case.id, status=CaseStatus.REPOSSESSION, by=by,
            why=f"{repo.route} {repo.legal_ref}", at=at,
        )  # fmt: skip
        repo.approved_by, repo.approved_at, repo.assignee_id = approver.id, at, agent.id
        self._advance(repo, case, RepoStatus.APPROVED, approver, at, f"assigned to {assignee}",
                      {"assignee": assignee, "dpd": snapshot.dpd})  # fmt: skip
        return repo

    # ------------------------------------------------------------------ the steps

    def record_recovery(
        self,
        *,
        repossession_id: int,
        by: str,
        at: datetime,
        recovered_on: date,
        place: str,
        condition: str,
        property_returned: bool,
        note: str = "",
    ) -> Repossession:
        """The vehicle is in the lender's hands: when, where, in what condition, and whether
        the borrower's personal belongings found in it were returned. The loan's operator
        status becomes ``repossessed``."""
        repo = self._get(repossession_id)
        check_step(repo.status, RepoStatus.APPROVED, "record the recovery of")
        _require_text(place=place, condition=condition)
        if recovered_on > self._local_day(at):
            raise FollowupError(f"recovered_on: {recovered_on} is in the future")
        user, case = self._user(by), self.session.get_one(Case, repo.case_id)
        repo.recovered_on, repo.recovered_place = recovered_on, place.strip()
        repo.condition, repo.property_returned = condition.strip(), property_returned
        LoanRepository(self.session).set_operator_status(
            self.session.get_one(Loan, repo.loan_id), "repossessed"
        )
        self._advance(repo, case, RepoStatus.RECOVERED, user, at, note,
                      {"recovered_on": recovered_on.isoformat(), "place": repo.recovered_place,
                       "condition": repo.condition,
                       "property_returned": property_returned})  # fmt: skip
        return repo

    def add_cost(
        self,
        *,
        repossession_id: int,
        kind: str,
        amount: int,
        incurred_on: date,
        by: str,
        at: datetime,
        note: str = "",
    ) -> RepossessionCost:
        """A recovery, storage, transport, appraisal, auction or legal cost in fen; accepted
        from approval until the proceeds are posted (they are recovered first)."""
        _check_aware(at)
        repo = self._get(repossession_id)
        if RepoStatus(repo.status) not in COSTS_OPEN:
            raise FollowupError(
                f"status: no costs can be added to a repossession that is {repo.status}"
            )
        if kind not in COST_KINDS:
            raise FollowupError(f"kind: {kind!r} is not one of {', '.join(sorted(COST_KINDS))}")
        if amount <= 0:
            raise FollowupError(f"amount: a cost must be positive, got {amount} fen")
        user = self._user(by)
        cost = RepossessionCost(
            repossession_id=repo.id, kind=kind, amount=amount, incurred_on=incurred_on,
            recorded_by=user.id, recorded_at=at, note=note or None,
        )  # fmt: skip
        self.session.add(cost)
        self.session.flush()
        case = self.session.get_one(Case, repo.case_id)
        self._log(repo, case, "cost", user, at, note, {"kind": kind, "amount": amount},
                  key=f"repo:{repo.id}:cost:{cost.id}")  # fmt: skip
        return cost

    def record_appraisal(
        self, *, repossession_id: int, by: str, at: datetime, value: int, appraiser: str
    ) -> Repossession:
        """The recovered vehicle's appraised value in fen, by a named appraiser."""
        repo = self._get(repossession_id)
        check_step(repo.status, RepoStatus.RECOVERED, "appraise")
        _require_text(appraiser=appraiser)
        if value <= 0:
            raise FollowupError(f"value: an appraisal must be positive, got {value} fen")
        user, case = self._user(by), self.session.get_one(Case, repo.case_id)
        repo.appraised_value = value
        self._advance(repo, case, RepoStatus.APPRAISED, user, at, "",
                      {"value": value, "appraiser": appraiser.strip()})  # fmt: skip
        return repo

    def record_sale(
        self, *, repossession_id: int, by: str, at: datetime, sold_on: date, price: int, buyer: str
    ) -> Repossession:
        """The vehicle was sold for ``price`` fen on ``sold_on``."""
        repo = self._get(repossession_id)
        check_step(repo.status, RepoStatus.APPRAISED, "record the sale of")
        _require_text(buyer=buyer)
        if price <= 0:
            raise FollowupError(f"price: a sale price must be positive, got {price} fen")
        assert repo.recovered_on is not None  # recorded before the appraisal
        if sold_on < repo.recovered_on:
            raise FollowupError(f"sold_on: {sold_on} is before the recovery on {repo.recovered_on}")
        user, case = self._user(by), self.session.get_one(Case, repo.case_id)
        repo.sold_on, repo.sale_price, repo.buyer = sold_on, price, buyer.strip()
        self._advance(repo, case, RepoStatus.SOLD, user, at, "",
                      {"sold_on": sold_on.isoformat(), "price": price,
                       "buyer": repo.buyer})  # fmt: skip
        return repo

    def post_proceeds(self, *, repossession_id: int, by: str, at: datetime) -> Disposal:
        """Post the sale proceeds: costs first, then the loan's payoff as of the evening
        before the sale day (its nightly snapshot must be there) as a payment on the sale day
        keyed ``repo:<id>:proceeds``, then any surplus back to the borrower. With no deficiency
        the loan is settled and the case closed (a surplus waits in ``surplus_due`` for
        :meth:`return_surplus`); otherwise the deficiency stays as a balance
        (status ``deficiency``) until :meth:`write_off`. Posting again returns the same split
        and records nothing new."""
        repo = self._get(repossession_id)
        if repo.paid_to_loan is not None:
            return self._disposal(repo)
        check_step(repo.status, RepoStatus.SOLD, "post the proceeds of")
        assert repo.sale_price is not None and repo.sold_on is not None
        user, case = self._user(by), self.session.get_one(Case, repo.case_id)
        loan = self.session.get_one(Loan, repo.loan_id)
        _check_aware(at)
        # the payoff the evening before the sale day, when the proceeds are paid
        snapshot = self._latest_snapshot(repo.loan_id, repo.sold_on - timedelta(days=1))
        costs = costs_total(self.session, repo.id)
        split = allocate_proceeds(proceeds=repo.sale_price, costs=costs, payoff=snapshot.payoff)
        if split.to_loan > 0:
            post_payment(self.session, loan=loan, external_id=f"repo:{repo.id}:proceeds",
                         paid_on=repo.sold_on, amount=split.to_loan, channel="repossession",
                         by=user.username, at=at)  # fmt: skip
        repo.costs_recovered, repo.paid_to_loan = split.costs_recovered, split.to_loan
        repo.surplus, repo.deficiency = split.surplus, split.deficiency
        details: dict[str, Any] = {
            "costs": split.costs, "costs_recovered": split.costs_recovered,
            "to_loan": split.to_loan, "surplus": split.surplus, "deficiency": split.deficiency,
            "payoff_on": snapshot.as_of.isoformat(),
        }  # fmt: skip
        if split.deficiency:
            self._advance(repo, case, RepoStatus.DEFICIENCY, user, at, "deficiency kept", details)
            return split
        if split.surplus:
            note = f"surplus of {split.surplus} fen to return"
            self._advance(repo, case, RepoStatus.SURPLUS_DUE, user, at, note, details)
        else:
            self._advance(repo, case, RepoStatus.SETTLED, user, at, "settled", details)
        self._close_loan(case, loan, "settled", user, at)
        return split

    def return_surplus(
        self, *, repossession_id: int, by: str, at: datetime, reference: str
    ) -> Repossession:
        """The surplus went back to the borrower by the transfer ``reference``."""
        repo = self._get(repossession_id)
        check_step(repo.status, RepoStatus.SURPLUS_DUE, "return the surplus of")
        _require_text(reference=reference)
        user, case = self._user(by), self.session.get_one(Case, repo.case_id)
        repo.surplus_ref = reference.strip()
        details = {"surplus": repo.surplus, "reference": repo.surplus_ref}
        self._advance(repo, case, RepoStatus.SETTLED, user, at, "", details)
        return repo

    def write_off(self, *, repossession_id: int, by: str, at: datetime, why: str) -> Repossession:
        """A supervisor writes off the deficiency left after the sale: the loan becomes
        ``written-off`` and the case closes."""
        repo = self._get(repossession_id)
        check_step(repo.status, RepoStatus.DEFICIENCY, "write off")
        if not why.strip():
            raise FollowupError("why: a write-off needs a reason")
        user = self._user(by)
        if user.role != "supervisor":
            raise FollowupError("by: refused (write_off_needs_supervisor)")
        case = self.session.get_one(Case, repo.case_id)
        details = {"deficiency": repo.deficiency}
        self._advance(repo, case, RepoStatus.WRITTEN_OFF, user, at, why, details)
        self._close_loan(case, self.session.get_one(Loan, repo.loan_id), "written-off", user, at)
        return repo

    # ------------------------------------------------------------------ reading

    def overdue(self, *, at: datetime) -> list[RepossessionStep]:
        """The steps waited for past their SLA deadline at ``at``, most overdue first."""
        _check_aware(at)
        return overdue_steps(self.session, at)

    def open_step(self, *, repossession_id: int) -> RepossessionStep | None:
        """The step the repossession waits for, with its SLA; None once it is final."""
        return open_step(self.session, self._get(repossession_id).id)

    def timeline(self, *, repossession_id: int) -> list[Action]:
        """The repossession's steps as logged on its case, in order."""
        return timeline(self.session, self._get(repossession_id).case_id)

    # ------------------------------------------------------------------ helpers

    def _advance(
        self,
        repo: Repossession,
        case: Case,
        status: RepoStatus,
        user: User,
        at: datetime,
        note: str,
        details: dict[str, Any],
    ) -> None:
        """Take the step the repossession waits for: close its row and log it against its
        SLA, then open the next step's row (none after a final status)."""
        _check_aware(at)
        step = self.open_step(repossession_id=repo.id)
        assert step is not None and step.step == NEXT_STEP[RepoStatus(repo.status)]
        step.done_at = at
        repo.status = status.value
        if status in FINAL:
            repo.closed_at = at
        else:
            self._open_step(repo, at)
        self._log(repo, case, step.step, user, at, note, {**details, "late": at > step.deadline_at})

    def _open_step(self, repo: Repossession, at: datetime) -> None:
        """Start the SLA clock of the step ``repo``'s status waits for, held by the recovery's
        assignee, or by nobody for a step any supervisor may take (approve, write off)."""
        step = NEXT_STEP[RepoStatus(repo.status)]
        holder = None if step in SUPERVISOR_STEPS else repo.assignee_id
        self.session.add(
            RepossessionStep(
                repossession_id=repo.id, step=step, assignee_id=holder, started_at=at,
                deadline_at=at + self.policy.sla[step],
            )
        )  # fmt: skip
        self.session.flush()

    def _close_loan(
        self, case: Case, loan: Loan, loan_status: str, user: User, at: datetime
    ) -> None:
        """Set the loan's final operator status and close its case."""
        LoanRepository(self.session).set_operator_status(loan, loan_status)
        if case.status == CaseStatus.CLOSED:  # the tick closes a case once the loan is final
            return
        why = f"repossession: loan {loan_status}"
        self.followup.change_status(case_id=case.id, status=CaseStatus.CLOSED, by=user.username,
                                    why=why, at=at)  # fmt: skip

    def _log(
        self,
        repo: Repossession,
        case: Case,
        step: str,
        user: User,
        at: datetime,
        note: str,
        details: dict[str, Any],
        *,
        key: str | None = None,
    ) -> None:
        """Log on the case's timeline (and in the ledger); a step is taken once per
        repossession, hence its key."""
        log_action(self.session, case, loan_ref=self.session.get_one(Loan, repo.loan_id).ref,
                   kind=ACTION_KIND, at=at, by=user, outcome=step, note=note or None,
                   details={"repossession": repo.id, **details},
                   key=key or f"repo:{repo.id}:{step}")  # fmt: skip
        self.session.flush()

    def _get(self, repossession_id: int) -> Repossession:
        repo = self.session.get(Repossession, repossession_id)
        if repo is None:
            raise NotFoundError(f"repossession_id: repossession {repossession_id} does not exist")
        return repo

    def _user(self, username: str) -> User:
        user = self.session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFoundError(f"by: no user {username!r}")
        return user

    def _open_case(self, loan_id: int) -> Case:
        """The loan's open case, read ``FOR KEY SHARE`` as FollowupService reads it: a step
        batch closing the case is waited for, and then the case is seen closed, so no order
        joins a closed case."""
        if self.session.get(Loan, loan_id) is None:
            raise NotFoundError(f"loan_id: loan {loan_id} does not exist")
        case = self.session.scalar(
            select(Case)
            .where(Case.loan_id == loan_id, Case.status != CaseStatus.CLOSED)
            .with_for_update(read=True, key_share=True)
            .execution_options(populate_existing=True)
        )
        if case is None:
            raise FollowupError(f"loan_id: loan {loan_id} has no open follow-up case")
        return case

    def _latest_snapshot(self, loan_id: int, day: date) -> LoanSnapshot:
        """The loan's latest nightly snapshot up to ``day``, if recent enough to be evidence."""
        snapshot = latest_snapshot(self.session, loan_id, day)
        if snapshot is None or day - snapshot.as_of > self.policy.max_snapshot_age:
            raise FollowupError(
                f"loan_id: refused (repossession_no_recent_snapshot: no nightly run within "
                f"{self.policy.max_snapshot_age.days} days up to {day})"
            )
        return snapshot

    def _local_day(self, at: datetime) -> date:
        """``at``'s calendar day in the business time zone (the nightly run's days)."""
        _check_aware(at)
        return at.astimezone(self.followup.zone).date()

    def _disposal(self, repo: Repossession) -> Disposal:
        assert repo.sale_price is not None and repo.costs_recovered is not None
        assert repo.paid_to_loan is not None and repo.surplus is not None
        assert repo.deficiency is not None
        return Disposal(
            proceeds=repo.sale_price, costs=costs_total(self.session, repo.id),
            costs_recovered=repo.costs_recovered, to_loan=repo.paid_to_loan,
            surplus=repo.surplus, deficiency=repo.deficiency,
        )  # fmt: skip


def _check_aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise FollowupError("at: must carry a time zone")


def _require_text(**fields: str) -> None:
    for name, value in fields.items():
        if not value.strip():
            raise FollowupError(f"{name}: must not be empty")
