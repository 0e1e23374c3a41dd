"""Which cases, loans and tasks a viewer reaches: all, their own (an agent: the cases assigned
to them or holding a task queued for them), their team's (a supervisor)."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, bindparam, false, or_, select, true
from sqlalchemy.orm import Session

from lienwatch.access.policy import Scope
from lienwatch.access.principal import Viewer
from lienwatch.errors import NotFoundError
from lienwatch.followup.model import TaskStatus
from lienwatch.store.tables import Case, Loan, Task, User


def case_condition(viewer: Viewer) -> ColumnElement[bool]:
    """The cases ``viewer`` reaches, as a condition on :class:`Case`."""
    if viewer.scope is Scope.TEAM and viewer.principal.team is None:
        return false()
    return _case_rule(viewer.scope, viewer.principal.user_id, viewer.principal.team)


@cache
def case_rule(scope: Scope) -> ColumnElement[bool]:
    """:func:`case_condition` for any viewer of ``scope``, the viewer given as the bound
    parameters of :func:`viewer_params` when the statement runs: a statement holding it is
    built once per process, not once per request (a team-less supervisor reaches nothing:
    the team is NULL)."""
    return _case_rule(scope, bindparam("viewer_id"), bindparam("viewer_team"))


def viewer_params(viewer: Viewer) -> dict[str, Any]:
    """The bound parameters of :func:`case_rule` for ``viewer``."""
    return {"viewer_id": viewer.principal.user_id, "viewer_team": viewer.principal.team}


def _case_rule(scope: Scope, user_id: Any, team: Any) -> ColumnElement[bool]:
    if scope is Scope.ALL:
        return true()
    if scope is Scope.OWN:
        people = select(User.id).where(User.id == user_id)
    else:
        people = select(User.id).where(User.team == team)
    queued = select(Task.case_id).where(Task.assignee_id.in_(people),
                                        Task.status == TaskStatus.QUEUED)  # fmt: skip
    return or_(Case.assignee_id.in_(people), Case.id.in_(queued))


def loan_condition(viewer: Viewer) -> ColumnElement[bool]:
    """The loans ``viewer`` reaches: those of the cases they reach."""
    if viewer.scope is Scope.ALL:
        return true()
    return Loan.id.in_(select(Case.loan_id).where(case_condition(viewer)))


def task_condition(viewer: Viewer) -> ColumnElement[bool]:
    """The tasks ``viewer`` reaches: those assigned to them, to their team, or queued for
    their team."""
    if viewer.scope is Scope.ALL:
        return true()
    principal = viewer.principal
    if viewer.scope is Scope.OWN:
        return Task.assignee_id == principal.user_id
    if principal.team is None:
        return false()
    team = select(User.id).where(User.team == principal.team)
    return or_(Task.assignee_id.in_(team), Task.team == principal.team)


def loan_id_of(session: Session, viewer: Viewer, ref: str) -> int:
    """The id of loan ``ref`` if ``viewer`` reaches it; else not found."""
    loan_id = session.scalar(select(Loan.id).where(Loan.ref == ref, loan_condition(viewer)))
    if loan_id is None:
        raise NotFoundError(f"ref: no loan {ref!r}")
    return loan_id


def visible_case_ids(session: Session, viewer: Viewer, case_ids: list[int]) -> set[int]:
    """Those of ``case_ids`` that ``viewer`` reaches."""
    if viewer.scope is Scope.ALL:
        return set(case_ids)
    return set(session.scalars(select(Case.id).where(Case.id.in_(case_ids),
                                                     case_condition(viewer))))  # fmt: skip
