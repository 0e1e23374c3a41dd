"""The verbs of a collector's and a supervisor's desk beside the read verbs the API shares
(``services/reads``): the compliance guard's answer for each queued contact, the agents'
load, reassigning a task, and what waits for a supervisor's approval."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from lienwatch.errors import NotFoundError
from lienwatch.followup.compliance import Decision
from lienwatch.followup.model import CaseStatus, Channel, FollowupError, Role, TaskStatus
from lienwatch.services.followup.commands import AWAITING, DECLINED, SENT
from lienwatch.services.followup.model import ServiceState
from lienwatch.store.tables import (
    Action,
    Case,
    Repossession,
    Task,
    Trigger,
    User,
)


@dataclass(frozen=True, slots=True)
class ContactCheck:
    """The compliance guard's answer for a queued task's contact, now: ``allowed`` None for
    a step that contacts nobody; times in the borrower's ``time_zone`` when shown."""

    allowed: bool | None
    rule: str | None
    next_allowed_at: datetime | None
    time_zone: str


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


#: Where a supervisor may escalate a case to.
ESCALATIONS = (CaseStatus.ESCALATED, CaseStatus.LEGAL)


def _check(decision: Decision | None, time_zone: str) -> ContactCheck:
    if decision is None:
        return ContactCheck(None, None, None, time_zone)
    return ContactCheck(decision.allowed, decision.rule, decision.next_allowed_at, time_zone)


class Desk(ServiceState):
    """The desk verbs of :class:`~lienwatch.services.followup.FollowupService`."""

    def contact_check(self, *, task_id: int, at: datetime) -> Decision | None:
        """What the compliance guard would say to the task's contact at ``at`` (nothing is
        recorded and no permit is kept); None for a step that contacts nobody."""
        task = self.session.get(Task, task_id)
        if task is None:
            raise NotFoundError(f"task_id: no task {task_id}")
        case = self.session.get_one(Case, task.case_id)
        trigger = self.session.get_one(Trigger, task.trigger_id)
        return self._ask_guard(case, trigger, Channel(task.channel), at)

    def _ask_guard(self, case: Case, trigger: Trigger, channel: Channel,
                   at: datetime) -> Decision | None:  # fmt: skip
        if not channel.contacts_borrower:
            return None
        view = self._loan_views({case.loan_id}, at)[case.loan_id]
        request = self._request(view, channel, at, case, trigger)
        decision = self.dispatcher.guard.check(request, self._history({view.id}, at)[view.id])
        if decision.permit is not None:
            self.dispatcher.guard.redeem(decision.permit, channel)  # a question, not a contact
        return decision

    def contact_checks(self, *, task_ids: list[int], at: datetime) -> dict[int, ContactCheck]:
        """:meth:`contact_check` for each task, with its borrower's time zone."""
        tasks = list(self.session.scalars(select(Task).where(Task.id.in_(task_ids))))
        views = self._loan_views({t.loan_id for t in tasks}, at)
        return {task.id: _check(self.contact_check(task_id=task.id, at=at),
                                views[task.loan_id].time_zone) for task in tasks}  # fmt: skip

    def case_contact_checks(self, *, case_ids: list[int], at: datetime) -> dict[int, ContactCheck]:
        """For each open case, the guard's answer now to its next contact: its first queued
        task's, else an agent's call about its first open trigger."""
        cases = list(self.session.scalars(select(Case).where(Case.id.in_(case_ids))))
        views = self._loan_views({c.loan_id for c in cases}, at)
        checks = {}
        for case in cases:
            task = self.session.scalar(
                select(Task).where(Task.case_id == case.id, Task.status == TaskStatus.QUEUED)
                .order_by(Task.due_at, Task.id).limit(1))  # fmt: skip
            trigger = self.session.scalar(
                select(Trigger).where(Trigger.case_id == case.id, Trigger.resolved_at.is_(None))
                .order_by(Trigger.next_due_at, Trigger.id).limit(1))  # fmt: skip
            if task is not None:
                decision = self.contact_check(task_id=task.id, at=at)
            elif trigger is not None:
                decision = self._ask_guard(case, trigger, Channel.CALL, at)
            else:
                decision = None
            checks[case.id] = _check(decision, views[case.loan_id].time_zone)
        return checks

    def assign_open_cases(self, *, agents: list[str], at: datetime) -> int:
        """Give every open case without an owner to ``agents`` in turn, most urgent first,
        each on its timeline (the demo staffing its desks); how many were given."""
        users = [self._user(name) for name in agents]
        if not users:
            return 0
        cases = list(self.session.scalars(
            select(Case).where(Case.status != CaseStatus.CLOSED, Case.assignee_id.is_(None))
            .order_by(Case.priority.desc(), Case.id)))  # fmt: skip
        for n, case in enumerate(cases):
            agent = users[n % len(users)]
            case.assignee_id = agent.id
            self._log(case, "status", at, None, outcome="assigned",
                      details={"to": agent.username})
        return len(cases)

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
        ):  # fmt: skip
            queued[assignee] += 1
            late[assignee] += deadline < at
        loads = [AgentLoad(a.username, a.display_name, a.team, a.active, queued[a.id],
                           late[a.id], a.daily_capacity) for a in agents]  # fmt: skip
        return sorted(loads, key=lambda load: (-load.queued, load.username))

    def reassign(self, *, task_id: int, to: str, by: str, at: datetime) -> Task:
        """Give a queued task's case (with the task) to agent ``to``: see
        :meth:`reassign_case`."""
        task = self.session.get(Task, task_id)
        if task is None or task.status != TaskStatus.QUEUED:
            raise NotFoundError(f"task_id: no queued task {task_id}")
        self.reassign_case(case_id=task.case_id, to=to, by=by, at=at)
        return task

    def reassign_case(self, *, case_id: int, to: str, by: str, at: datetime) -> Case:
        """Give an open case and its queued tasks to agent ``to``; only a supervisor of the
        team of both agents (the holder's and ``to``'s) may, and the case's timeline records
        who did it. Giving it to its holder changes nothing."""
        case = self.session.get(Case, case_id)
        if case is None or case.status == CaseStatus.CLOSED:
            raise NotFoundError(f"case_id: no open case {case_id}")
        supervisor, agent = self._user(by), self._user(to)
        if supervisor.role != Role.SUPERVISOR:
            raise FollowupError(f"by: {by} is not a supervisor")
        if agent.role != Role.AGENT or not agent.active:
            raise FollowupError(f"to: {to} is not an active agent")
        tasks = list(self.session.scalars(
            select(Task).where(Task.case_id == case.id, Task.status == TaskStatus.QUEUED)
            .order_by(Task.id)))  # fmt: skip
        holders = {self.session.get_one(User, held) for held in
                   {case.assignee_id, *(t.assignee_id for t in tasks)} if held}  # fmt: skip
        if supervisor.team != agent.team or any(h.team != supervisor.team for h in holders):
            raise FollowupError(f"to: {to} is not in team {supervisor.team} of {by}")
        if case.assignee_id == agent.id and all(t.assignee_id == agent.id for t in tasks):
            return case
        held = case.assignee_id or next((t.assignee_id for t in tasks if t.assignee_id), None)
        holder = self.session.get(User, held) if held else None
        for task in tasks:
            task.assignee_id, task.assigned_at = agent.id, at
        case.assignee_id = agent.id
        self._log(case, "status", at, supervisor.id, outcome="reassigned",
                  details={"tasks": [t.id for t in tasks],
                           "from": holder.username if holder else None,
                           "to": agent.username})  # fmt: skip
        return case

    def escalate_case(
        self, *, case_id: int, to: CaseStatus | str, by: str, why: str, at: datetime
    ) -> Case:
        """A supervisor escalates an open case (to ``escalated`` or ``legal``; repossession
        is ordered with :class:`~lienwatch.services.repossession.RepossessionService`), with
        the reason on its timeline."""
        target = CaseStatus(to) if to in set(CaseStatus) else None
        if target not in ESCALATIONS:
            raise FollowupError(f"to: escalate to one of {', '.join(ESCALATIONS)}")
        if self._user(by).role != Role.SUPERVISOR:
            raise FollowupError(f"by: {by} is not a supervisor")
        return self.change_status(case_id=case_id, status=target, by=by, why=why, at=at)


@dataclass(frozen=True, slots=True)
class PendingCommand:
    """A tracker command an agent asked for that waits for a supervisor's approval."""

    case_id: int
    loan: str
    command: str
    requested_at: datetime
    requested_by: str | None
    dpd: int
    request_id: int  # the action asking for it, which approve/decline_tracker_command take


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
        """Tracker commands requested (or refused for want of a supervisor's approval) on open
        cases, with no command of the same kind sent or declined after them, oldest first."""
        rows = self.session.execute(
            select(Action, Case.loan_id).join(Case, Case.id == Action.case_id)
            .where(Action.kind == Channel.TRACKER_COMMAND.value,
                   Case.status != CaseStatus.CLOSED)
            .order_by(Action.performed_at, Action.id)
        ).all()  # fmt: skip
        waiting: dict[tuple[int, str], tuple[Action, int]] = {}
        for action, loan_id in rows:
            key = (action.case_id, action.details.get("command", ""))
            if action.outcome in AWAITING:
                waiting.setdefault(key, (action, loan_id))
            elif action.outcome in (SENT, DECLINED):
                waiting.pop(key, None)
        users = dict(self.session.execute(select(User.id, User.username)).all())
        return [PendingCommand(a.case_id, self.loan_ref(loan_id), a.details.get("command", ""),
                               a.performed_at, users.get(a.performed_by),
                               int(a.details.get("dpd", 0)), a.id)
                for a, loan_id in waiting.values()]  # fmt: skip

    def pending_repossessions(self) -> list[PendingRepossession]:
        """Repossession orders not approved yet, oldest first."""
        users = dict(self.session.execute(select(User.id, User.username)).all())
        orders = self.session.scalars(
            select(Repossession).where(Repossession.status == "ordered")
            .order_by(Repossession.ordered_at, Repossession.id)
        )  # fmt: skip
        return [PendingRepossession(r.id, r.case_id, self.loan_ref(r.loan_id), r.route,
                                    r.legal_ref, r.dpd_at_order, r.ordered_at,
                                    users.get(r.ordered_by, ""))
                for r in orders]  # fmt: skip


