"""The verbs of people: an agent's queue, recording a task's outcome through the compliance
guard, tracker commands with a supervisor's approval."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from lienwatch.errors import NotFoundError
from lienwatch.followup.compliance import PastContact
from lienwatch.followup.model import (
    Channel,
    FollowupError,
    FollowupRefused,
    Hold,
    Outcome,
    Role,
    TaskStatus,
)
from lienwatch.followup.outcomes import UNREACHED, check_outcome
from lienwatch.services.followup.model import AgentOutcome, LoanView, ServiceState
from lienwatch.services.timeline import log_refusal
from lienwatch.store.db import chunks
from lienwatch.store.followup import HISTORY_DAYS
from lienwatch.store.tables import Action, Case, ContactAttempt, Promise, Task, Trigger, User

log = logging.getLogger(__name__)


class Agents(ServiceState):
    """The follow-up service's agents (a part of :class:`FollowupService`)."""

    def queue(self, *, agent: str) -> list[Task]:
        """The agent's assigned tasks, most urgent first (read with the agent in one query: a
        scheduler asks for every agent's queue at every tick, most of them empty; the agent
        is kept for recording the outcomes)."""
        rows = self.session.execute(
            select(User, Task)
            .outerjoin(Task, and_(Task.assignee_id == User.id, Task.status == TaskStatus.QUEUED))
            .where(User.username == agent)
            .order_by(Task.priority.desc(), Task.deadline_at, Task.id)
        ).all()
        if not rows:  # no such agent: _user says so
            self._user(agent)
            return []
        self._users[agent] = rows[0][0]
        return [task for _, task in rows if task is not None]

    def record_outcome(
        self,
        *,
        task_id: int,
        by: str,
        at: datetime,
        outcome: Outcome | str,
        promised_on: date | None = None,
        amount: int | None = None,
        recording_ref: str | None = None,
        consented: bool = False,
        note: str = "",
        case_id: int | None = None,
    ) -> Action:
        """Record what an agent (``by``) did on a queued task. Calls and visits pass the compliance
        guard first: a refused contact is recorded as a refused attempt (with its rule) and
        raises FollowupRefused, which ``transaction()`` commits with that record.
        A promise needs a date and an amount; a visit under ``cn`` a recording reference;
        a bad outcome records nothing. With ``case_id`` (a case's page, which checked that
        the user reaches the case), a task of another case is not found."""
        entry = AgentOutcome(task_id, at, outcome, promised_on, amount, recording_ref,
                             consented, note, case_id)  # fmt: skip
        recorded = self.record_outcomes(by=by, outcomes=[entry])[0]
        if isinstance(recorded, FollowupError):
            raise recorded
        return recorded

    def record_outcomes(
        self, *, by: str, outcomes: Sequence[AgentOutcome]
    ) -> list[Action | FollowupError]:
        """Record an agent's outcomes in their order, each exactly as :meth:`record_outcome`
        would one call after the other (the same guard decisions, the same rows): an outcome
        it would refuse (FollowupRefused, its refusal recorded) or reject (FollowupError,
        nothing recorded) is returned in that outcome's place and the next ones go on. A task
        that is not queued when its turn comes raises NotFoundError.

        What the calls would each read again is read once: the tasks with their triggers and
        cases, the loans' views and the compliance history; the rows are written in as few
        flushes as the keys they need allow."""
        batch = _Batch(self, outcomes)
        recorded: list[Action | FollowupError] = []
        for entry in outcomes:
            try:
                recorded.append(self._record(entry, by, batch))
            except FollowupRefused as refused:  # its refusal is recorded: the others go on
                recorded.append(refused)
            except FollowupError as rejected:  # nothing of it recorded
                recorded.append(rejected)
        batch.link()
        return recorded

    def _record(self, entry: AgentOutcome, by: str, batch: _Batch) -> Action:
        """One outcome of :meth:`record_outcomes`."""
        at = entry.at
        try:
            result = Outcome(entry.outcome)
        except ValueError:
            raise FollowupError(f"outcome: unknown outcome {entry.outcome!r}") from None
        task = batch.tasks.get(entry.task_id)
        if task is None or task.status != TaskStatus.QUEUED:
            raise NotFoundError(f"task_id: no queued task {entry.task_id}")
        if entry.case_id is not None and task.case_id != entry.case_id:
            raise NotFoundError(f"task_id: no queued task {entry.task_id} on case "
                                f"{entry.case_id}")  # fmt: skip
        user = self._user(by)
        holder = self._check_may_record(task, user)
        channel = Channel(task.channel)
        check_outcome(
            result,
            channel,
            promised_on=entry.promised_on,
            amount=entry.amount,
            recording_ref=entry.recording_ref,
            visit_needs_recording=self.dispatcher.guard.profile.visit_needs_recording,
            at=at,
            promise_within=self.strategy.promise_within,
        )
        trigger, case = batch.triggers[task.trigger_id], batch.cases[task.case_id]
        view = batch.view(task.loan_id, at)
        connected = result not in UNREACHED
        if channel.contacts_borrower:
            request = replace(self._request(view, channel, at, case, trigger),
                              consented=entry.consented)  # fmt: skip
            decision = self.dispatcher.guard.check(request, batch.history(view.id, at))
            if not decision.allowed or decision.permit is None:
                log_refusal(self.session, loan_id=view.id, loan_ref=view.ref, channel=channel,
                            at=at, agency=self.agency, rule=decision.rule,
                            next_allowed_at=decision.next_allowed_at, by=user)  # fmt: skip
                next_at = decision.next_allowed_at
                raise FollowupRefused(
                    f"at: contact refused ({decision.rule})", rule=decision.rule,
                    next_allowed_at=next_at.isoformat() if next_at else None,
                )  # fmt: skip
            self.dispatcher.guard.redeem(decision.permit, channel)
        details: dict[str, Any] = {"trigger": trigger.id, "step": task.step, "task": task.id}
        if holder is not None:
            details["for"] = holder.username  # a supervisor recording an agent's task
        if entry.recording_ref:
            details["recording_ref"] = entry.recording_ref
        action = self._log(
            case,
            channel.value,
            at,
            user.id,
            outcome=result.value,
            note=entry.note or None,
            details=details,
            key=f"task:{task.id}",
        )
        if channel.contacts_borrower:
            attempt = ContactAttempt(
                loan_id=view.id,
                channel=channel.value,
                at=at,
                agency=self.agency,
                allowed=True,
                rule="ok",
                connected=connected and channel.is_call,
                conversation=result.right_party and channel.is_call,
                consented=entry.consented,
            )
            self.session.add(attempt)
            batch.contacted(attempt, action)
        if result is Outcome.PROMISE_TO_PAY:
            assert entry.promised_on is not None and entry.amount is not None
            batch.link()  # the promise needs its action's key
            self.session.add(
                Promise(
                    case_id=case.id,
                    loan_id=view.id,
                    action_id=action.id,
                    made_on=at.astimezone(self.zone).date(),
                    promised_on=entry.promised_on,
                    amount=entry.amount,
                )
            )
        if result is Outcome.DISPUTE:
            case.hold = Hold.DISPUTE
        task.status, task.done_at = TaskStatus.DONE, at
        self._step_done(trigger, case, at)
        if self._cancel or self._touched:  # else closing would only have flushed
            self._close_finished_cases(at)
        return action

    def _check_may_record(self, task: Task, user: User) -> User | None:
        """Only the task's assignee, or a supervisor of the assignee's team, records its
        outcome; returns the assignee when a supervisor records for them."""
        if task.assignee_id is None or task.assignee_id == user.id:
            return None
        holder = self.session.get_one(User, task.assignee_id)
        if user.role == Role.SUPERVISOR and user.team == holder.team:
            return holder
        raise FollowupError(
            f"agent: task {task.id} is assigned to {holder.username}; only they or a supervisor "
            f"of team {holder.team} may record it"
        )


class _Batch:
    """What :meth:`Agents.record_outcomes` reads once for its outcomes: their tasks, triggers
    and cases, the loans' views of each snapshot day and the loans' contacts from a week
    before the first outcome to the last, to which the batch's own are added as it goes;
    and the contact attempts waiting for their actions' keys."""

    def __init__(self, service: Agents, outcomes: Sequence[AgentOutcome]) -> None:
        session = service.session
        self.service = service
        self.tasks = _by_id(session, Task, {e.task_id for e in outcomes})
        self.triggers = _by_id(session, Trigger, {t.trigger_id for t in self.tasks.values()})
        self.cases = _by_id(session, Case, {t.case_id for t in self.tasks.values()})
        self.loans = {t.loan_id for t in self.tasks.values()}
        self.views: dict[date | None, dict[int, LoanView]] = {}
        moments = [e.at for e in outcomes]
        contacted = {t.loan_id for t in self.tasks.values() if Channel(t.channel).contacts_borrower}
        self.past: dict[int, list[PastContact]] = defaultdict(list)
        if contacted:
            self.past = service._history(contacted, max(moments), since=min(moments))
        self.links: list[tuple[ContactAttempt, Action]] = []

    def view(self, loan_id: int, at: datetime) -> LoanView:
        day = self.service._snapshot_day(at)
        if day not in self.views:
            self.views[day] = self.service._loan_views(self.loans, at)
        return self.views[day][loan_id]

    def history(self, loan_id: int, at: datetime) -> list[PastContact]:
        """The loan's contacts ``_history`` would read at ``at``."""
        earliest = at - timedelta(days=HISTORY_DAYS + 1)
        return [c for c in self.past[loan_id] if earliest < c.at <= at]

    def contacted(self, attempt: ContactAttempt, action: Action) -> None:
        """A contact made: in the history of the outcomes after it, its action's key later."""
        self.past[attempt.loan_id].append(PastContact(
            attempt.at, Channel(attempt.channel), attempt.connected, attempt.conversation,
            attempt.consented))  # fmt: skip
        self.links.append((attempt, action))

    def link(self) -> None:
        """Flush, and point the contact attempts waiting at their actions."""
        self.service.session.flush()
        for attempt, action in self.links:
            attempt.action_id = action.id
        self.links.clear()


Row = TypeVar("Row", Task, Trigger, Case)


def _by_id(session: Session, model: type[Row], ids: set[int]) -> dict[int, Row]:
    """The rows of ``model`` with these keys: the session's own objects, those it does not
    hold read in a few ``IN`` queries (an agent's session is often one task)."""
    found: dict[int, Row] = {}
    for key in ids:
        held = session.identity_map.get(Session.identity_key(model, key))
        if held is not None:
            found[key] = held
    for chunk in chunks(sorted(ids - found.keys())):
        found.update((row.id, row) for row in session.scalars(
            select(model).where(model.id.in_(chunk))))  # fmt: skip
    return found
