"""Repossessions and the strategy as the API reads them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.errors import NotFoundError
from lienwatch.followup.strategy import Strategy
from lienwatch.services.repossession import RepossessionService
from lienwatch.store.tables import Loan, Repossession, User


def repossession_view(session: Session, repossession_id: int) -> dict[str, Any]:
    """A repossession order: its route, state, who ordered, approved and recovers it."""
    repo = session.get(Repossession, repossession_id)
    if repo is None:
        raise NotFoundError(f"repossession_id: no repossession {repossession_id}")

    def name(user_id: int | None) -> str | None:
        return session.get_one(User, user_id).username if user_id is not None else None

    return {"id": repo.id, "case": repo.case_id, "loan": session.get_one(Loan, repo.loan_id).ref,
            "status": repo.status, "jurisdiction": repo.jurisdiction, "route": repo.route,
            "legal_ref": repo.legal_ref, "dpd_at_order": repo.dpd_at_order,
            "ordered_by": name(repo.ordered_by), "ordered_at": repo.ordered_at,
            "approved_by": name(repo.approved_by), "approved_at": repo.approved_at,
            "assignee": name(repo.assignee_id)}  # fmt: skip


def repossession_steps(service: RepossessionService, repossession_id: int) -> dict[str, Any]:
    """A repossession's steps taken (as logged on its case) and the step it waits for."""
    session = service.session
    names = dict(session.execute(select(User.id, User.username)).all())
    taken = [{"at": a.performed_at, "step": a.outcome or "", "by": names.get(a.performed_by),
              "note": a.note, "details": a.details}
             for a in service.timeline(repossession_id=repossession_id)]  # fmt: skip
    step = service.open_step(repossession_id=repossession_id)
    waiting = None if step is None else {"step": step.step, "due_by": step.deadline_at,
                                         "assignee": names.get(step.assignee_id)}  # fmt: skip
    return {"repossession": repossession_id, "items": taken, "waiting_for": waiting}


def strategy_view(strategy: Strategy) -> dict[str, Any]:
    """The strategy in force: name, version, compliance profile, ladders, challenger."""
    return {"name": strategy.name, "version": strategy.version, "label": strategy.label,
            "profile": strategy.profile,
            "ladders": [ladder.model_dump(mode="json") for ladder in strategy.ladders],
            "challenger": strategy.challenger.model_dump(mode="json")
            if strategy.challenger else None}  # fmt: skip
