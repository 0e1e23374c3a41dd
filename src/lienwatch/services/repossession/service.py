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

from datetime import date, datetime

from sqlalchemy import select

from lienwatch.followup.assignment import check_reassignment
from lienwatch.followup.model import CaseStatus, FollowupError
from lienwatch.followup.repossession import (
    SUPERVISOR_STEPS,
    RepoStatus,
    check_approval,
    check_order,
    check_step,
)
from lienwatch.services.repossession.base import check_aware, require_text
from lienwatch.services.repossession.disposal import DisposalSteps
from lienwatch.services.repossession.views import OverdueStep
from lienwatch.store.repositories import LoanRepository
from lienwatch.store.repossession import (
    open_step,
    overdue_steps,
    timeline,
)
from lienwatch.store.tables import (
    Action,
    Case,
    Loan,
    Repossession,
    RepossessionStep,
    User,
)


class RepossessionService(DisposalSteps):
    """The repossession verbs on one session; the caller owns the transaction.

    Case status changes go through ``followup`` (the case status machine and its timeline).
    """

    # ------------------------------------------------------------------ order and approval

    def order(
        self, *, loan_id: int, route: str, legal_ref: str, by: str, at: datetime, why: str
    ) -> Repossession:
        """Order the repossession of a loan with an open case. Refused (FollowupError naming
        the rule) below the DPD floor of the latest nightly snapshot, on a snapshot too old to
        prove it, through a route the jurisdiction does not allow, always for self-help, and
        for a car not registered to the loan (抵押登记) on the day of the order."""
        check_aware(at)
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
        self._check_registration(loan_id, self._local_day(at))
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
                case_id=case.id,
                status=CaseStatus.ESCALATED,
                by=by,
                why="repossession approved",
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

    def reassign(self, *, repossession_id: int, to: str, by: str, at: datetime) -> Repossession:
        """Give the recovery (and the step it waits for, unless any supervisor takes it) to
        agent ``to``, as a case is reassigned (:func:`check_reassignment`: a supervisor of the
        team of both agents), and the case's timeline records who did it and from whom."""
        repo = self._get(repossession_id)
        supervisor, agent = self._user(by), self._user(to)
        step = open_step(self.session, repo.id)
        holder = self.session.get(User, repo.assignee_id) if repo.assignee_id else None
        held = {repo.assignee_id, step.assignee_id if step else None}
        check_reassignment(supervisor, agent,
                           [self.session.get_one(User, h) for h in held if h])  # fmt: skip
        if step is None:
            raise FollowupError(f"repossession_id: repossession {repo.id} is {repo.status}")
        repo.assignee_id = agent.id
        if step.step not in SUPERVISOR_STEPS:
            step.assignee_id = agent.id
        self._log(repo, self.session.get_one(Case, repo.case_id), "reassigned", supervisor, at,
                  f"{step.step} reassigned to {to}",
                  {"step": step.step, "from": holder.username if holder else None, "to": to},
                  key=f"repo:{repo.id}:reassigned:{step.id}:{at:%Y%m%dT%H%M%S}")  # fmt: skip
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
        require_text(place=place, condition=condition)
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

    # ------------------------------------------------------------------ reading

    def overdue(self, *, at: datetime) -> list[OverdueStep]:
        """The steps waited for past their SLA deadline at ``at``, most overdue first, with
        the loan and who holds each."""
        check_aware(at)
        return [
            OverdueStep(
                repossession_id=step.repossession_id,
                loan=self.session.get_one(Loan, step.repossession.loan_id).ref,
                status=RepoStatus(step.repossession.status), step=step.step,
                due_by=step.deadline_at,
                held_by=(self.session.get_one(User, step.assignee_id).username
                         if step.assignee_id else None),
                breached=step.breached_at is not None,
            )
            for step in overdue_steps(self.session, at)
        ]  # fmt: skip

    def open_step(self, *, repossession_id: int) -> RepossessionStep | None:
        """The step the repossession waits for, with its SLA; None once it is final."""
        return open_step(self.session, self._get(repossession_id).id)

    def timeline(self, *, repossession_id: int) -> list[Action]:
        """The repossession's steps as logged on its case, in order."""
        return timeline(self.session, self._get(repossession_id).case_id)
