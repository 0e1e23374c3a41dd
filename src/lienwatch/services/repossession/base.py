"""What the repossession verbs share: the session, the policy, the follow-up service that
moves the case, and the helpers that open and take steps, log them and check the loan."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Self

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.config import RepossessionSettings
from lienwatch.errors import NotFoundError
from lienwatch.followup.model import CaseStatus, FollowupError
from lienwatch.followup.repossession import (
    FINAL,
    NEXT_STEP,
    SUPERVISOR_STEPS,
    Disposal,
    RepossessionPolicy,
    RepoStatus,
    policy_from_settings,
)
from lienwatch.ledger.collateral import pledged_loans
from lienwatch.services.followup import FollowupService
from lienwatch.services.ledger import collateral_registrations
from lienwatch.services.timeline import log_action
from lienwatch.store.repositories import LoanRepository
from lienwatch.store.repossession import (
    ACTION_KIND,
    costs_total,
    latest_snapshot,
)
from lienwatch.store.tables import (
    Case,
    Loan,
    LoanSnapshot,
    Repossession,
    RepossessionStep,
    User,
    Vehicle,
)


class RepossessionState:
    """The state and helpers of :class:`~lienwatch.services.repossession.RepossessionService`."""

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
    ) -> Self:
        return cls(
            session,
            followup=followup,
            policy=policy_from_settings(settings),
            jurisdiction=settings.jurisdiction,
        )

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
        check_aware(at)
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

    def _check_registration(self, loan_id: int, day: date) -> None:
        """A repossession enforces the mortgage: the car must be registered to this loan
        (抵押登记) on ``day``."""
        loan = self.session.get_one(Loan, loan_id)
        vin = self.session.get_one(Vehicle, loan.vehicle_id).vin
        if loan.ref not in pledged_loans(collateral_registrations(self.session, vin=vin), day):
            raise FollowupError(
                f"loan_id: refused (repossession_unregistered_collateral: vehicle {vin} has no "
                f"mortgage registration in force for loan {loan.ref} on {day}; record it with "
                "`lienwatch collateral register`)"
            )

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
        check_aware(at)
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


def check_aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise FollowupError("at: must carry a time zone")


def require_text(**fields: str) -> None:
    for name, value in fields.items():
        if not value.strip():
            raise FollowupError(f"{name}: must not be empty")
