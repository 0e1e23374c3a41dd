"""The read verbs of a collector's and a supervisor's desk (the console's queue and team
pages): a queue with the figures an agent works by and the compliance guard's answer for
each contact, who may open a case, the team's load, and reassigning a task."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from lienwatch.errors import LienwatchError, NotFoundError
from lienwatch.followup.compliance import Decision
from lienwatch.followup.model import CaseStatus, Channel, FollowupError, Role, TaskStatus
from lienwatch.services.followup.model import ServiceState
from lienwatch.store.followup import OPEN_ALERT_STATUSES
from lienwatch.store.tables import (
    Action,
    Alert,
    Borrower,
    Case,
    Loan,
    LoanSnapshot,
    Repossession,
    Task,
    Trigger,
    User,
)


class Forbidden(LienwatchError):
    """A user asked for a case that is not theirs to see (the API and console answer 404,
    so that the refusal tells nothing about the case)."""


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One queued task as the agent's queue shows it; money in fen, times aware."""

    task_id: int
    case_id: int
    loan: str
    borrower: str
    channel: str
    priority: int
    dpd: int
    bucket: str
    overdue: int  # principal, interest, penalty and fees past due
    unsecured: int
    open_alerts: int
    due_at: datetime
    deadline_at: datetime
    assignee: str | None
    time_zone: str  # the borrower's, for the times below and the contact window
    contact_allowed: bool | None  # None: the step contacts nobody (a review, a GPS check)
    rule: str | None
    next_allowed_at: datetime | None


@dataclass(frozen=True, slots=True)
class AgentLoad:
    """An agent's queue as a supervisor sees it."""

    username: str
    display_name: str
    team: str | None
    active: bool
    queued: int
    overdue: int  # queued tasks past their deadline
    daily_capacity: int


class Desk(ServiceState):
    """The desk verbs of :class:`~lienwatch.services.followup.FollowupService`."""

    def contact_check(self, *, task_id: int, at: datetime) -> Decision | None:
        """What the compliance guard would say to the task's contact at ``at`` (nothing is
        recorded and no permit is kept); None for a step that contacts nobody."""
        task = self.session.get(Task, task_id)
        if task is None:
            raise NotFoundError(f"task_id: no task {task_id}")
        channel = Channel(task.channel)
        if not channel.contacts_borrower:
            return None
        view = self._loan_views({task.loan_id}, at)[task.loan_id]
        case = self.session.get_one(Case, task.case_id)
        trigger = self.session.get_one(Trigger, task.trigger_id)
        request = self._request(view, channel, at, case, trigger)
        decision = self.dispatcher.guard.check(request, self._history({view.id}, at)[view.id])
        if decision.permit is not None:
            self.dispatcher.guard.redeem(decision.permit, channel)  # a question, not a contact
        return decision

    def queue_rows(self, *, agent: str | None, at: datetime, team: str | None = None,
                   limit: int = 200) -> list[QueueRow]:  # fmt: skip
        """Queued tasks, most urgent first: ``agent``'s, or with ``agent`` None those of
        ``team`` (every team's when None too), each with the loan's figures at the latest
        nightly run and the guard's answer at ``at``."""
        query = select(Task).where(Task.status == TaskStatus.QUEUED)
        if agent is not None:
            query = query.where(Task.assignee_id == self._user(agent).id)
        elif team is not None:
            query = query.where(Task.team == team)
        tasks = list(self.session.scalars(
            query.order_by(Task.priority.desc(), Task.deadline_at, Task.id).limit(limit)
        ))  # fmt: skip
        loan_ids = {t.loan_id for t in tasks}
        views = self._loan_views(loan_ids, at)
        overdue = self._overdue(loan_ids, at)
        alerts = self._open_alerts(loan_ids)
        names = dict(self.session.execute(
            select(Loan.id, Borrower.name).join(Borrower, Borrower.id == Loan.borrower_id)
            .where(Loan.id.in_(loan_ids))
        ).tuples().all())  # fmt: skip
        users = {u.id: u.username for u in self.session.scalars(select(User))}
        rows = []
        for task in tasks:
            view = views[task.loan_id]
            decision = self.contact_check(task_id=task.id, at=at)
            rows.append(QueueRow(
                task_id=task.id, case_id=task.case_id, loan=view.ref,
                borrower=names.get(task.loan_id, ""), channel=task.channel,
                priority=task.priority, dpd=view.dpd, bucket=view.bucket,
                overdue=overdue.get(task.loan_id, 0), unsecured=view.unsecured,
                open_alerts=alerts.get(task.loan_id, 0), due_at=task.due_at,
                deadline_at=task.deadline_at,
                assignee=users.get(task.assignee_id) if task.assignee_id else None,
                time_zone=view.time_zone,
                contact_allowed=None if decision is None else decision.allowed,
                rule=None if decision is None else decision.rule,
                next_allowed_at=None if decision is None else decision.next_allowed_at,
            ))  # fmt: skip
        return rows

    def _overdue(self, loan_ids: set[int], at: datetime) -> dict[int, int]:
        day = self._snapshot_day(at)
        if day is None or not loan_ids:
            return {}
        rows = self.session.execute(
            select(LoanSnapshot.loan_id,
                   LoanSnapshot.overdue_principal + LoanSnapshot.overdue_interest
                   + LoanSnapshot.penalty_accrued + LoanSnapshot.fees_due)
            .where(LoanSnapshot.as_of == day, LoanSnapshot.loan_id.in_(loan_ids))
        ).tuples()  # fmt: skip
        return dict(rows.all())

    def _open_alerts(self, loan_ids: set[int]) -> dict[int, int]:
        if not loan_ids:
            return {}
        rows = self.session.execute(
            select(Alert.loan_id, func.count())
            .where(Alert.loan_id.in_(loan_ids), Alert.status.in_(OPEN_ALERT_STATUSES))
            .group_by(Alert.loan_id)
        ).tuples()  # fmt: skip
        return {loan: n for loan, n in rows.all() if loan is not None}

    def check_may_see(self, *, case_id: int, username: str) -> Case:
        """The case, if ``username`` may see it: an agent the cases assigned to them (the
        case or one of its queued tasks), a supervisor their team's and unassigned ones, the
        analyst and the auditor every case; anyone else (an administrator included) is
        refused with :class:`Forbidden`, as is a case that does not exist."""
        case = self.session.get(Case, case_id)
        user = self._user(username)
        if case is None:
            raise Forbidden(f"case: no case {case_id} for {username}")
        role = Role(user.role)
        if role in (Role.ANALYST, Role.AUDITOR):
            return case
        holders = {case.assignee_id, *self.session.scalars(
            select(Task.assignee_id).where(Task.case_id == case.id,
                                           Task.status == TaskStatus.QUEUED))}  # fmt: skip
        holders.discard(None)
        if role is Role.AGENT and user.id in holders:
            return case
        if role is Role.SUPERVISOR:
            teams = set(self.session.scalars(select(User.team).where(User.id.in_(holders))))
            if not holders or user.team in teams:
                return case
        raise Forbidden(f"case: no case {case_id} for {username}")

    def loans_of(self, username: str) -> set[int]:
        """The loans whose open cases are ``username``'s (assigned to them, or one of their
        queued tasks): what an agent's "own" rows are."""
        user = self._user(username)
        cases = select(Case.loan_id).where(Case.assignee_id == user.id,
                                           Case.status != CaseStatus.CLOSED)
        tasks = select(Task.loan_id).where(Task.assignee_id == user.id,
                                           Task.status == TaskStatus.QUEUED)
        return set(self.session.scalars(cases.union(tasks)))

    def agent_loads(self, *, team: str | None, at: datetime) -> list[AgentLoad]:
        """Every agent (of ``team``, or all) with their queued tasks and those past the
        deadline at ``at``, most loaded first."""
        query = select(User).where(User.role == Role.AGENT.value)
        if team is not None:
            query = query.where(User.team == team)
        agents = list(self.session.scalars(query))
        queued: Counter[int] = Counter()
        late: Counter[int] = Counter()
        for assignee, deadline in self.session.execute(
            select(Task.assignee_id, Task.deadline_at)
            .where(Task.status == TaskStatus.QUEUED, Task.assignee_id.is_not(None))
        ).tuples():  # fmt: skip
            queued[assignee] += 1
            late[assignee] += deadline < at
        loads = [AgentLoad(a.username, a.display_name, a.team, a.active, queued[a.id],
                           late[a.id], a.daily_capacity) for a in agents]  # fmt: skip
        return sorted(loads, key=lambda load: (-load.queued, load.username))

    def reassign(self, *, task_id: int, to: str, by: str, at: datetime) -> Task:
        """Give a queued task (and its case) to agent ``to``; only a supervisor of both
        agents' team may, and the case's timeline records who did it."""
        task = self.session.get(Task, task_id)
        if task is None or task.status != TaskStatus.QUEUED:
            raise NotFoundError(f"task_id: no queued task {task_id}")
        supervisor, agent = self._user(by), self._user(to)
        if supervisor.role != Role.SUPERVISOR:
            raise FollowupError(f"by: {by} is not a supervisor")
        if agent.role != Role.AGENT or not agent.active:
            raise FollowupError(f"to: {to} is not an active agent")
        holder = self.session.get(User, task.assignee_id) if task.assignee_id else None
        if supervisor.team not in {agent.team} or (holder and holder.team != supervisor.team):
            raise FollowupError(f"to: {to} is not in team {supervisor.team} of {by}")
        case = self.session.get_one(Case, task.case_id)
        task.assignee_id, task.assigned_at = agent.id, at
        case.assignee_id = agent.id
        self._log(case, "status", at, supervisor.id, outcome="reassigned",
                  details={"task": task.id, "from": holder.username if holder else None,
                           "to": agent.username})  # fmt: skip
        return task


@dataclass(frozen=True, slots=True)
class PendingCommand:
    """A tracker command an agent asked for that waits for a supervisor's approval."""

    case_id: int
    loan: str
    command: str
    requested_at: datetime
    requested_by: str | None
    dpd: int


@dataclass(frozen=True, slots=True)
class PendingRepossession:
    """A repossession order waiting for a supervisor's approval."""

    repossession_id: int
    case_id: int
    loan: str
    route: str
    legal_ref: str
    dpd: int
    ordered_at: datetime
    ordered_by: str


class Approvals(ServiceState):
    """What waits for a supervisor: tracker commands and repossession orders."""

    def pending_tracker_commands(self) -> list[PendingCommand]:
        """Tracker commands refused for want of a supervisor's approval on open cases, with
        no approved command of the same kind after them, oldest first."""
        rows = self.session.execute(
            select(Action, Case.loan_id).join(Case, Case.id == Action.case_id)
            .where(Action.kind == Channel.TRACKER_COMMAND.value,
                   Case.status != CaseStatus.CLOSED)
            .order_by(Action.performed_at, Action.id)
        ).tuples().all()  # fmt: skip
        waiting: dict[tuple[int, str], tuple[Action, int]] = {}
        for action, loan_id in rows:
            key = (action.case_id, action.details.get("command", ""))
            if action.outcome == NEEDS_SUPERVISOR:
                waiting.setdefault(key, (action, loan_id))
            elif action.outcome == "sent":
                waiting.pop(key, None)
        users = dict(self.session.execute(select(User.id, User.username)).tuples().all())
        return [PendingCommand(a.case_id, self.loan_ref(loan_id), a.details.get("command", ""),
                               a.performed_at, users.get(a.performed_by),
                               int(a.details.get("dpd", 0)))
                for a, loan_id in waiting.values()]  # fmt: skip

    def pending_repossessions(self) -> list[PendingRepossession]:
        """Repossession orders not approved yet, oldest first."""
        users = dict(self.session.execute(select(User.id, User.username)).tuples().all())
        orders = self.session.scalars(
            select(Repossession).where(Repossession.status == "ordered")
            .order_by(Repossession.ordered_at, Repossession.id)
        )  # fmt: skip
        return [PendingRepossession(r.id, r.case_id, self.loan_ref(r.loan_id), r.route,
                                    r.legal_ref, r.dpd_at_order, r.ordered_at,
                                    users.get(r.ordered_by, ""))
                for r in orders]  # fmt: skip


NEEDS_SUPERVISOR = "tracker_command_needs_supervisor"  # the rule authorize_tracker_command gives
