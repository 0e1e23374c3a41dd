"""The verbs of people: an agent's queue, recording a task's outcome through the compliance
guard, tracker commands with a supervisor's approval."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from lienwatch.errors import NotFoundError
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
from lienwatch.services.followup.model import ServiceState
from lienwatch.services.timeline import log_refusal
from lienwatch.store.tables import Action, Case, ContactAttempt, Promise, Task, Trigger, User

log = logging.getLogger(__name__)


class Agents(ServiceState):
    """The follow-up service's agents (a part of :class:`FollowupService`)."""

    def queue(self, *, agent: str) -> list[Task]:
        """The agent's assigned tasks, most urgent first."""
        user = self._user(agent)
        return list(
            self.session.scalars(
                select(Task)
                .where(Task.assignee_id == user.id, Task.status == TaskStatus.QUEUED)
                .order_by(Task.priority.desc(), Task.deadline_at, Task.id)
            )
        )

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
    ) -> Action:
        """Record what an agent (``by``) did on a queued task. Calls and visits pass the compliance
        guard first: a refused contact is recorded as a refused attempt (with its rule) and
        raises FollowupRefused, which ``transaction()`` commits with that record.
        A promise needs a date and an amount; a visit under ``cn`` a recording reference;
        a bad outcome records nothing."""
        try:
            result = Outcome(outcome)
        except ValueError:
            raise FollowupError(f"outcome: unknown outcome {outcome!r}") from None
        task = self.session.get(Task, task_id)
        if task is None or task.status != TaskStatus.QUEUED:
            raise NotFoundError(f"task_id: no queued task {task_id}")
        user = self._user(by)
        holder = self._check_may_record(task, user)
        channel = Channel(task.channel)
        check_outcome(
            result,
            channel,
            promised_on=promised_on,
            amount=amount,
            recording_ref=recording_ref,
            visit_needs_recording=self.dispatcher.guard.profile.visit_needs_recording,
            at=at,
        )
        trigger = self.session.get_one(Trigger, task.trigger_id)
        case = self.session.get_one(Case, task.case_id)
        view = self._loan_views({task.loan_id}, at)[task.loan_id]
        connected = result not in UNREACHED
        if channel.contacts_borrower:
            request = replace(self._request(view, channel, at, case, trigger), consented=consented)
            decision = self.dispatcher.guard.check(request, self._history({view.id}, at)[view.id])
            if not decision.allowed or decision.permit is None:
                log_refusal(self.session, loan_id=view.id, loan_ref=view.ref, channel=channel,
                            at=at, agency=self.agency, rule=decision.rule,
                            next_allowed_at=decision.next_allowed_at, by=user)  # fmt: skip
                self.session.flush()
                next_at = decision.next_allowed_at
                raise FollowupRefused(
                    f"at: contact refused ({decision.rule})", rule=decision.rule,
                    next_allowed_at=next_at.isoformat() if next_at else None,
                )  # fmt: skip
            self.dispatcher.guard.redeem(decision.permit, channel)
        details: dict[str, Any] = {"trigger": trigger.id, "step": task.step, "task": task.id}
        if holder is not None:
            details["for"] = holder.username  # a supervisor recording an agent's task
        if recording_ref:
            details["recording_ref"] = recording_ref
        action = self._log(
            case,
            channel.value,
            at,
            user.id,
            outcome=result.value,
            note=note or None,
            details=details,
            key=f"task:{task.id}",
        )
        self.session.flush()
        if channel.contacts_borrower:
            self.session.add(
                ContactAttempt(
                    loan_id=view.id,
                    channel=channel.value,
                    at=at,
                    agency=self.agency,
                    allowed=True,
                    rule="ok",
                    connected=connected and channel.is_call,
                    conversation=result.right_party and channel.is_call,
                    consented=consented,
                    action_id=action.id,
                )
            )
        if result is Outcome.PROMISE_TO_PAY:
            assert promised_on is not None and amount is not None
            self.session.add(
                Promise(
                    case_id=case.id,
                    loan_id=view.id,
                    action_id=action.id,
                    made_on=at.astimezone(self.zone).date(),
                    promised_on=promised_on,
                    amount=amount,
                )
            )
        if result is Outcome.DISPUTE:
            case.hold = Hold.DISPUTE
        task.status, task.done_at = TaskStatus.DONE, at
        self._step_done(trigger, case, at)
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

