"""The verbs of a collector's and a supervisor's desk beside the read verbs the API shares
(``services/reads``): the compliance guard's answer for each queued contact, the agents'
load, reassigning a task, and what waits for a supervisor's approval."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy import case as sql_case
from sqlalchemy.orm import aliased

from lienwatch.access.principal import Viewer
from lienwatch.errors import NotFoundError
from lienwatch.followup.assignment import check_reassignment
from lienwatch.followup.compliance import Decision
from lienwatch.followup.model import CaseStatus, Channel, FollowupError, Role, TaskStatus
from lienwatch.services.followup.commands import AWAITING, DECLINED, SENT
from lienwatch.services.followup.model import ServiceState
from lienwatch.services.reads.visibility import case_condition
from lienwatch.store.followup import next_steps
from lienwatch.store.tables import (
    Action,
    Case,
    Loan,
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
        [(decision, _)] = self._ask_guard([(task.case_id, task.trigger_id, task.channel)], at)
        return decision

    def _ask_guard(self, asks: list[tuple[int, int | None, str | None]],
                   at: datetime) -> list[tuple[Decision | None, str]]:  # fmt: skip
        """The guard's answer (None: no contact) and the borrower's time zone for each
        (case, trigger, channel) of ``asks``; the cases, triggers, loans and contact history
        are read in bulk, a few queries whatever the number asked."""
        cases = {c.id: c for c in self.session.scalars(
            select(Case).where(Case.id.in_({case_id for case_id, _, _ in asks})))}  # fmt: skip
        triggers = {t.id: t for t in self.session.scalars(
            select(Trigger).where(Trigger.id.in_({tid for _, tid, _ in asks if tid})))}  # fmt: skip
        loan_ids = {case.loan_id for case in cases.values()}
        views, history = self._loan_views(loan_ids, at), self._history(loan_ids, at)
        answers: list[tuple[Decision | None, str]] = []
        for case_id, trigger_id, channel_name in asks:
            case = cases[case_id]
            view, decision = views[case.loan_id], None
            channel = Channel(channel_name) if channel_name else None
            if channel is not None and trigger_id is not None and channel.contacts_borrower:
                request = self._request(view, channel, at, case, triggers[trigger_id])
                decision = self.dispatcher.guard.check(request, history[view.id])
                if decision.permit is not None:  # a question, not a contact
                    self.dispatcher.guard.redeem(decision.permit, channel)
            answers.append((decision, view.time_zone))
        return answers

    def contact_checks(self, *, task_ids: list[int], at: datetime) -> dict[int, ContactCheck]:
        """:meth:`contact_check` for each task, with its borrower's time zone."""
        tasks = list(self.session.scalars(select(Task).where(Task.id.in_(task_ids))))
        answers = self._ask_guard([(t.case_id, t.trigger_id, t.channel) for t in tasks], at)
        return {task.id: _check(*answer) for task, answer in zip(tasks, answers, strict=True)}

    def case_contact_checks(self, *, case_ids: list[int], at: datetime) -> dict[int, ContactCheck]:
        """For each case, the guard's answer now to its next contact (its next step, as
        ``store.followup.next_steps`` finds it): its first queued task's, else an agent's
        call about its first open trigger; all cases in one pass."""
        steps = next_steps(self.session, case_ids)
        found = list(self.session.scalars(select(Case.id).where(Case.id.in_(case_ids))))
        asks = [(case_id, step.trigger_id, step.channel or Channel.CALL.value)
                if (step := steps.get(case_id)) else (case_id, None, None)
                for case_id in found]  # fmt: skip
        answers = self._ask_guard(asks, at)
        return {case_id: _check(*answer) for case_id, answer in zip(found, answers, strict=True)}

    def assign_open_cases(self, *, agents: list[str], at: datetime) -> int:
        """Give every open case without an owner, most urgent first, to one of ``agents``:
        the one holding most of its queued tasks, else the next in turn; the case's queued
        tasks all go to that owner, so that a case is one collector's (the demo staffing its
        desks). Each on its timeline; how many cases were given."""
        users = [self._user(name) for name in agents]
        if not users:
            return 0
        unowned = (Case.status != CaseStatus.CLOSED, Case.assignee_id.is_(None))
        cases = list(self.session.scalars(
            select(Case).where(*unowned).order_by(Case.priority.desc(), Case.id)))  # fmt: skip
        queued: dict[int, list[Task]] = defaultdict(list)
        for task in self.session.scalars(
            select(Task).join(Case, Case.id == Task.case_id)
            .where(*unowned, Task.status == TaskStatus.QUEUED).order_by(Task.id)
        ):  # fmt: skip
            queued[task.case_id].append(task)
        self._read_refs(case.loan_id for case in cases)
        turn = 0
        for case in cases:
            held = Counter(t.assignee_id for t in queued[case.id])
            agent = max((u for u in users if held[u.id]), key=lambda u: held[u.id], default=None)
            if agent is None:
                agent, turn = users[turn % len(users)], turn + 1
            case.assignee_id = agent.id
            for task in queued[case.id]:
                if task.assignee_id != agent.id:
                    task.assignee_id, task.assigned_at = agent.id, at
            self._log(case, "status", at, None, outcome="assigned",
                      details={"to": agent.username, "tasks": [t.id for t in queued[case.id]]})
        return len(cases)

    def agent_loads(self, *, team: str | None, at: datetime) -> list[AgentLoad]:
        """Every agent (of ``team``, or all) with their queued tasks and those past the
        deadline at ``at``, most loaded first (counted in the database)."""
        queued = func.count(Task.id)
        late = func.coalesce(func.sum(sql_case((Task.deadline_at < at, 1), else_=0)), 0)
        query = (
            select(User.username, User.display_name, User.team, User.active, queued, late,
                   User.daily_capacity)
            .outerjoin(Task, and_(Task.assignee_id == User.id,
                                  Task.status == TaskStatus.QUEUED))
            .where(User.role == Role.AGENT.value)
            .group_by(User.id, User.username, User.display_name, User.team, User.active,
                      User.daily_capacity)
            .order_by(queued.desc(), User.username)
        )  # fmt: skip
        if team is not None:
            query = query.where(User.team == team)
        return [AgentLoad(*row) for row in self.session.execute(query)]

    def reassign_case(self, *, case_id: int, to: str, by: str, at: datetime) -> Case:
        """Give an open case and its queued tasks to agent ``to``; only a supervisor of the
        team of both agents (the holder's and ``to``'s) may, and the case's timeline records
        who did it. Giving it to its holder changes nothing."""
        case = self.session.get(Case, case_id)
        if case is None or case.status == CaseStatus.CLOSED:
            raise NotFoundError(f"case_id: no open case {case_id}")
        supervisor, agent = self._user(by), self._user(to)
        tasks = list(self.session.scalars(
            select(Task).where(Task.case_id == case.id, Task.status == TaskStatus.QUEUED)
            .order_by(Task.id)))  # fmt: skip
        holders = {self.session.get_one(User, held) for held in
                   {case.assignee_id, *(t.assignee_id for t in tasks)} if held}  # fmt: skip
        check_reassignment(supervisor, agent, holders)
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
    why: str | None = None  # the requester's reason


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

    def pending_tracker_commands(
        self, *, viewer: Viewer | None = None, limit: int | None = None,
        after: tuple[datetime, int] | None = None,
    ) -> list[PendingCommand]:  # fmt: skip
        """Tracker commands requested (or refused for want of a supervisor's approval) on open
        cases, with no command of the same kind sent or declined after them, oldest first
        (the oldest waiting request of a case's command stands for it): on the cases
        ``viewer`` reaches (the one rule of the API and the console; None: all), ``limit`` of
        them after the request keyed (requested at, request id) ``after``. One query."""
        command = Action.details["command"].as_string()

        def answered(request: Any) -> Any:  # a command of the same kind sent or declined since
            answer = aliased(Action)
            return exists().where(
                answer.case_id == request.case_id, answer.kind == Channel.TRACKER_COMMAND.value,
                answer.outcome.in_((SENT, DECLINED)),
                answer.details["command"].as_string() == request.details["command"].as_string(),
                _later(answer, request),
            )  # fmt: skip

        earlier = aliased(Action)
        stood_for = exists().where(  # an older request of the command still waits
            earlier.case_id == Action.case_id, earlier.kind == Channel.TRACKER_COMMAND.value,
            earlier.outcome.in_(sorted(AWAITING)),
            earlier.details["command"].as_string() == command, _later(Action, earlier),
            ~answered(earlier),
        )  # fmt: skip
        query = (
            select(Action, Loan.ref, User.username).join(Case, Case.id == Action.case_id)
            .join(Loan, Loan.id == Case.loan_id).outerjoin(User, User.id == Action.performed_by)
            .where(Action.kind == Channel.TRACKER_COMMAND.value,
                   Action.outcome.in_(sorted(AWAITING)), Case.status != CaseStatus.CLOSED,
                   ~answered(Action), ~stood_for)
            .order_by(Action.performed_at, Action.id).limit(limit)
        )  # fmt: skip
        if viewer is not None:
            query = query.where(case_condition(viewer))
        if after is not None:
            query = query.where(or_(Action.performed_at > after[0], and_(
                Action.performed_at == after[0], Action.id > after[1])))  # fmt: skip
        return [PendingCommand(action.case_id, ref, action.details.get("command", ""),
                               action.performed_at, requester,
                               int(action.details.get("dpd", 0)), action.id, action.note)
                for action, ref, requester in self.session.execute(query)]  # fmt: skip

    def pending_repossessions(
        self, *, limit: int | None = None, after: tuple[datetime, int] | None = None
    ) -> list[PendingRepossession]:
        """Repossession orders not approved yet, oldest first, with who ordered them;
        ``limit`` of them after the order keyed (ordered at, id) ``after``."""
        query = (
            select(Repossession, Loan.ref, User.username)
            .join(Loan, Loan.id == Repossession.loan_id)
            .outerjoin(User, User.id == Repossession.ordered_by)
            .where(Repossession.status == "ordered")
            .order_by(Repossession.ordered_at, Repossession.id).limit(limit)
        )  # fmt: skip
        if after is not None:
            query = query.where(or_(Repossession.ordered_at > after[0], and_(
                Repossession.ordered_at == after[0], Repossession.id > after[1])))  # fmt: skip
        return [PendingRepossession(r.id, r.case_id, ref, r.route, r.legal_ref, r.dpd_at_order,
                                    r.ordered_at, orderer or "")
                for r, ref, orderer in self.session.execute(query)]  # fmt: skip


def _later(one: Any, other: Any) -> Any:
    """``one`` action after ``other`` (by time, then id)."""
    return or_(one.performed_at > other.performed_at,
               and_(one.performed_at == other.performed_at, one.id > other.id))  # fmt: skip


