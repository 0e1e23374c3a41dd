"""Due steps: claiming them, executing the automatic ones through the compliance guard and
the providers (retry after a failed send, waiting or escalating after a refusal), queueing the
agent ones, and moving a trigger to its next step (rules in ``followup/steps.py``)."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, select, update

from lienwatch.followup.assignment import priority
from lienwatch.followup.channels import Message
from lienwatch.followup.compliance import ContactRequest, PastContact
from lienwatch.followup.model import (
    CaseStatus,
    Channel,
    FollowupError,
    Hold,
    Outcome,
    TaskStatus,
    TriggerKind,
)
from lienwatch.followup.steps import delivery_route, message_text, next_step, step_key
from lienwatch.followup.strategy import LadderSpec, StepSpec
from lienwatch.followup.triggers import DELINQUENCY, repeats
from lienwatch.services.followup.model import DueStep, LoanView, ServiceState, TickReport
from lienwatch.services.timeline import log_contact, log_refusal
from lienwatch.store.db import among, write_deferred
from lienwatch.store.tables import Case, Loan, Task, Trigger

log = logging.getLogger(__name__)

#: The trigger's columns a claimed step is read with (:class:`DueStep`).
_CLAIMED = ("id", "case_id", "loan_id", "kind", "ladder", "anchor_at", "step", "next_due_at",
            "deadline_at", "first_action_at", "warned_at")  # fmt: skip
_MOVE_STEP = (
    update(Trigger.__table__)
    .where(Trigger.__table__.c.id == bindparam("trigger_id"))
    .values({name: bindparam(name) for name in DueStep.MOVED})
)


class Steps(ServiceState):
    """The follow-up service's steps (a part of :class:`FollowupService`)."""

    def _run_due_steps(self, now: datetime, report: TickReport, limit: int | None) -> None:
        """Claim at most ``limit`` due steps (all when None), oldest due first, and execute or
        queue them.

        On PostgreSQL the claim locks each due trigger together with its case,
        ``FOR UPDATE OF triggers, cases SKIP LOCKED``: concurrent batches never take the same
        step, nor steps of one case (whose status they may both change), and never wait for
        each other or for a tick; a tick may wait for a batch, never the reverse, so the two
        cannot deadlock. The locked rows are read as committed, but the claim's test for a
        queued task saw the statement's snapshot: a batch that queued an agent step and
        committed meanwhile left the trigger itself unchanged, so queued tasks are looked up
        again in a fresh statement. SQLite has one writer and needs none of this.

        The steps are read as plain rows (:class:`DueStep`, not ORM objects) and written back
        with one update for the batch (:meth:`_write_steps`)."""
        self.session.flush()  # changes to these triggers made earlier in the transaction
        queued = exists().where(Task.trigger_id == Trigger.id, Task.status == TaskStatus.QUEUED)
        claimed = [
            DueStep(**row._mapping)
            for row in self.session.execute(
                select(*(getattr(Trigger, name) for name in _CLAIMED))
                .join(Case, Case.id == Trigger.case_id)
                .where(Trigger.resolved_at.is_(None), Trigger.next_due_at <= now, ~queued)
                .order_by(Trigger.next_due_at, Trigger.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=[Trigger.__table__, Case.__table__])
            )
        ]
        report.steps += len(claimed)
        taken = self._queued_triggers([t.id for t in claimed])
        due = [trigger for trigger in claimed if trigger.id not in taken]
        if not due:
            return
        views = self._loan_views({t.loan_id for t in due}, now)
        cases = {
            c.id: c
            for ids in among(self.session, Case.id, {t.case_id for t in due})
            for c in self.session.scalars(
                select(Case).where(ids).execution_options(populate_existing=True)
            )
        }
        history = self._history({t.loan_id for t in due}, now)
        for trigger in due:
            step = self._ladder(trigger, cases[trigger.case_id]).steps[trigger.step]
            case, view = cases[trigger.case_id], views[trigger.loan_id]
            if step.status:
                self._advance_status(
                    case, step.status, now, f"ladder {trigger.ladder} step {trigger.step + 1}"
                )
            if step.channel.automatic:
                self._execute(trigger, case, view, step, now, history[view.id], report)
            else:
                self._queue(trigger, case, view, step)
                report.queued += 1
        self._write_steps(due)
        write_deferred(self.session)  # the batch's contacts, for the rest of the tick to see

    def _write_steps(self, due: list[DueStep]) -> None:
        """The batch's triggers as its steps left them: one update for all (an
        ``executemany``); ORM copies of them in the session are expired, to be read again."""
        self.session.execute(_MOVE_STEP, [trigger.moved() for trigger in due])
        ids = {trigger.id for trigger in due}
        for held in list(self.session.identity_map.values()):
            if isinstance(held, Trigger) and held.id in ids:
                self.session.expire(held)

    def _queued_triggers(self, trigger_ids: list[int]) -> set[int]:
        """The triggers among ``trigger_ids`` with an agent step waiting in a queue."""
        return {
            trigger_id
            for ids in among(self.session, Task.trigger_id, trigger_ids)
            for trigger_id in self.session.scalars(
                select(Task.trigger_id).where(ids, Task.status == TaskStatus.QUEUED)
            )
        }

    def _ladder(self, trigger: Trigger | DueStep, case: Case) -> LadderSpec:
        ladder = next(
            (lad for lad in self._ladders(case.arm or "champion") if lad.name == trigger.ladder),
            None,
        )
        if ladder is None:
            raise FollowupError(
                f"ladder: {trigger.ladder!r} is not in strategy {self.strategy.label}"
            )
        return ladder

    def _ladders(self, arm: str) -> tuple[LadderSpec, ...]:
        if arm == "challenger" and self.strategy.challenger:
            return (*self.strategy.challenger.ladders, *self.strategy.ladders)
        return self.strategy.ladders

    def _execute(
        self,
        trigger: DueStep,
        case: Case,
        view: LoanView,
        step: StepSpec,
        now: datetime,
        history: list[PastContact],
        report: TickReport,
    ) -> None:
        if step.channel is Channel.GPS_CHECK:
            self._log(
                case,
                step.channel.value,
                now,
                None,
                outcome=Outcome.CHECKED.value,
                details={"trigger": trigger.id, "step": trigger.step},
                key=step_key(trigger.id, trigger.step, trigger.next_due_at),
            )
            self._step_done(trigger, case, now)
            report.executed += 1
            return
        channel, address = delivery_route(step.channel, phone=view.phone, email=view.email,
                                          address=view.address)  # fmt: skip
        decision = self.dispatcher.guard.check(
            self._request(view, channel, now, case, trigger), history
        )
        if not decision.allowed or decision.permit is None:
            self._refused(
                trigger, case, view, channel, now, decision.rule, decision.next_allowed_at
            )
            report.refused += 1
            return
        key = step_key(trigger.id, trigger.step, trigger.next_due_at)
        message = Message(address, message_text(trigger.kind, view.ref), key, subject="lienwatch")
        delivery = self.dispatcher.send(decision.permit, channel, message)
        attempts = [_attempt(a) for a in delivery.attempts]
        log_contact(self.session, case_id=case.id, loan_id=view.id, loan_ref=view.ref,
                    channel=channel, at=now, agency=self.agency,
                    outcome=Outcome.DELIVERED.value if delivery.delivered else "failed",
                    details={"trigger": trigger.id, "step": trigger.step, "attempts": attempts,
                             "requested": step.channel.value},
                    key=key)  # fmt: skip
        history.append(PastContact(now, channel))
        if delivery.delivered:
            self._step_done(trigger, case, now)
            report.executed += 1
        else:
            trigger.next_due_at = now + timedelta(hours=1)  # retried on a later tick

    def _request(
        self, view: LoanView, channel: Channel, at: datetime, case: Case,
        trigger: Trigger | DueStep,
    ) -> ContactRequest:
        routine = TriggerKind(trigger.kind) not in DELINQUENCY and view.dpd == 0
        return ContactRequest(
            loan=view.ref,
            channel=channel,
            at=at,
            time_zone=view.time_zone,
            purpose="routine" if routine else "collection",
            do_not_contact=case.hold == Hold.DO_NOT_CONTACT,
            dispute_hold=case.hold == Hold.DISPUTE,
        )

    def _refused(
        self,
        trigger: DueStep,
        case: Case,
        view: LoanView,
        channel: Channel,
        now: datetime,
        rule: str,
        next_allowed: datetime | None,
    ) -> None:
        """Record a refusal; wait for the next allowed time, or with no such time (a hold)
        hand the step to the supervisor's judgement by escalating the case."""
        log_refusal(self.session, loan_id=view.id, loan_ref=view.ref, channel=channel, at=now,
                    agency=self.agency, rule=rule, next_allowed_at=next_allowed)  # fmt: skip
        if next_allowed is not None:
            trigger.next_due_at = next_allowed
            return
        self._log(
            case,
            "refusal",
            now,
            None,
            outcome=rule,
            note=f"{channel.value} refused by the compliance guard: {rule}",
            details={"trigger": trigger.id, "step": trigger.step},
        )
        self._advance_status(case, CaseStatus.ESCALATED, now, f"contact refused: {rule}")
        self._step_done(trigger, case, now)

    def _contactable(self, due: datetime, step: StepSpec, time_zone: str) -> datetime:
        """When a step can start: a contact step waits for the borrower's contact hours, so
        its SLA clock never runs through quiet hours (an alert at 02:13 is called at 08:00)."""
        if not step.channel.keeps_contact_hours:
            return due
        return self.dispatcher.guard.contact_window_opens(due, time_zone)

    def _time_zone(self, trigger: Trigger | DueStep) -> str:
        """The time zone of the trigger's loan (read with the loans' views of a batch; one at a
        time otherwise)."""
        zone = self._zones.get(trigger.loan_id)
        if zone is None:
            self._read_time_zones([trigger.loan_id])
            zone = self._zones[trigger.loan_id]
        return zone

    def _read_time_zones(self, loan_ids: Collection[int]) -> None:
        for ids in among(self.session, Loan.id, loan_ids):
            rows = self.session.execute(select(Loan.id, Loan.time_zone).where(ids))
            self._zones.update(dict(rows.all()))

    def _step_done(self, trigger: Trigger | DueStep, case: Case, at: datetime) -> None:
        """Move the trigger to its next step; a finished routine ladder resolves the trigger,
        a finished delinquency or alert ladder repeats its last step."""
        if trigger.first_action_at is None:
            trigger.first_action_at = at
        if case.status == CaseStatus.NEW:
            why = f"first follow-up of trigger {trigger.kind}"
            self._move(case, CaseStatus.IN_PROGRESS, at, None, why)
        following = next_step(self._ladder(trigger, case), done=trigger.step,
                              anchor_at=trigger.anchor_at, at=at,
                              repeats=repeats(TriggerKind(trigger.kind)))  # fmt: skip
        if following is None:
            self._resolve_trigger(trigger, at, "completed")
            return
        trigger.step = following.index
        trigger.next_due_at = self._contactable(following.due, following.step,
                                                self._time_zone(trigger))  # fmt: skip
        trigger.deadline_at = trigger.next_due_at + following.step.sla
        trigger.warned_at = None

    def _queue(self, trigger: DueStep, case: Case, view: LoanView, step: StepSpec) -> None:
        """An agent task; its priority is the case's arm's (the behaviour score's expected loss
        on a challenger ordering by it, when the case was scored)."""
        by_score = self.strategy.priority_of(case.arm) == "behaviour"
        roll = case.roll_score if by_score else None
        self.session.add(
            Task(
                key=f"{trigger.id}:{trigger.step}:{trigger.next_due_at:%Y%m%d%H%M}",
                trigger_id=trigger.id,
                case_id=trigger.case_id,
                loan_id=view.id,
                step=trigger.step,
                channel=step.channel.value,
                skill=step.required_skill,
                team=step.team,
                due_at=trigger.next_due_at,
                deadline_at=trigger.deadline_at,
                priority=priority(unsecured=view.unsecured, dpd=view.dpd, roll=roll),
            )
        )


def _attempt(attempt: Any) -> dict[str, Any]:
    return {"number": attempt.number, "ok": attempt.ok, "detail": attempt.detail}
