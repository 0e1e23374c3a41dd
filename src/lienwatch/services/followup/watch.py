"""Assignment of the queue and the SLA watchdog: hand tasks out by urgency within each
agent's capacity, say which tasks nobody present can take, escalate a step before its
deadline and record a breach after it, for the triggers' steps and repossession steps."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from lienwatch.followup.assignment import QueuedTask, assign, staffing_gaps, unstaffed
from lienwatch.followup.model import CaseStatus, TaskStatus
from lienwatch.followup.repossession import step_team
from lienwatch.followup.watchdog import (
    Verdict,
    Watched,
    breach_note,
    escalated_priority,
    judge,
    restart_deadline,
    warning_note,
)
from lienwatch.services.followup.model import ServiceState, TickReport
from lienwatch.store.db import among
from lienwatch.store.followup import agent_slot, unassigned_tasks
from lienwatch.store.tables import Action, Case, Repossession, RepossessionStep, Task, Trigger, User

log = logging.getLogger(__name__)


class Watch(ServiceState):
    """The follow-up service's watch (a part of :class:`FollowupService`)."""

    def _assign(self, now: datetime, report: TickReport) -> None:
        """Release tasks held by absent agents or left from an earlier day, then hand the
        queue out by urgency within each agent's remaining capacity for today."""
        self._cancel_tasks(now)
        day_start = self._midnight(self._today(now))
        absent = select(User.id).where(User.active.is_(False))
        self.session.execute(
            update(Task)
            .where(
                Task.status == TaskStatus.QUEUED,
                Task.assignee_id.is_not(None),
                or_(Task.assignee_id.in_(absent), Task.assigned_at < day_start),
            )
            .values(assignee_id=None, assigned_at=None)
        )
        agents = self.session.scalars(
            select(User).where(User.role == "agent", User.active.is_(True))
        ).all()
        taken = dict(
            self.session.execute(
                select(Task.assignee_id, func.count())
                .where(Task.assigned_at >= day_start)
                .group_by(Task.assignee_id)
            ).all()
        )
        slots = [agent_slot(agent, taken.get(agent.id, 0)) for agent in agents]
        queued = unassigned_tasks(self.session)
        chosen = assign(queued, slots, horizon=now + timedelta(days=1))
        stuck = unstaffed(queued, slots)
        report.unstaffed.update(staffing_gaps(stuck))
        self._notice_unstaffed(stuck, now)
        if report.unstaffed:
            log.warning("unstaffed: queued tasks no active agent can take: %s",
                        ", ".join(f"{n} {who}" for who, n in sorted(report.unstaffed.items())))
        if chosen:
            self.session.execute(
                update(Task),
                [
                    {"id": task_id, "assignee_id": agent_id, "assigned_at": now}
                    for task_id, agent_id in chosen.items()
                ],
            )
        report.assigned += len(chosen)

    def _notice_unstaffed(self, tasks: list[QueuedTask], now: datetime) -> None:
        """A notice on the case timeline of each task no one present can take, once per
        task, where the supervisor of the case reads it."""
        keys = {f"unstaffed:{task.id}": task for task in tasks}
        known: set[str] = set()
        for ids in among(self.session, Action.idempotency_key, keys):
            known.update(self.session.scalars(select(Action.idempotency_key).where(ids)))
        fresh = {key: task for key, task in keys.items() if key not in known}
        cases = dict(self.session.execute(
            select(Task.id, Task.case_id).where(Task.id.in_([t.id for t in fresh.values()]))
        ).all()) if fresh else {}  # fmt: skip
        for key, task in fresh.items():
            team = f" of team {task.team}" if task.team else ""
            self.session.add(Action(
                case_id=cases[task.id], kind="notice", performed_at=now, outcome="unstaffed",
                note=f"no active {task.skill} agent{team} can take task {task.id} "
                     f"(due by {task.deadline_at.isoformat()})",
                details={"task": task.id, "skill": task.skill, "team": task.team},
                idempotency_key=key,
            ))  # fmt: skip

    def _watch(self, now: datetime, report: TickReport) -> None:
        """Escalate a trigger whose SLA ends within the watchdog's lead; record a breach
        against the team when it ended with the step undone (and give the step a fresh SLA
        window so it is chased, not forgotten).

        The triggers and cases are locked first: a step batch that holds one has its step done
        and committed before the watchdog judges it (it may then not be at risk at all)."""
        self.session.flush()
        at_risk = self.session.scalars(
            select(Trigger)
            .where(
                Trigger.resolved_at.is_(None),
                Trigger.deadline_at <= now + self.watchdog_lead,
                or_(Trigger.warned_at.is_(None), Trigger.deadline_at <= now),
            )
            .order_by(Trigger.id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        ).all()
        if not at_risk:
            return
        cases = {
            c.id: c
            for c in self.session.scalars(
                select(Case)
                .where(Case.id.in_({t.case_id for t in at_risk}))
                .order_by(Case.id)
                .with_for_update(key_share=True)
                .execution_options(populate_existing=True)
            )
        }
        teams = self._teams({t.id for t in at_risk})
        for trigger in at_risk:
            case = cases[trigger.case_id]
            ladder = self._ladder(trigger, case)
            what = f"step {trigger.step + 1}"
            watched = Watched(trigger.deadline_at, trigger.warned_at)
            if judge(watched, now=now, lead=self.watchdog_lead) is Verdict.ESCALATE:
                trigger.warned_at = now
                self._log(case, "escalation", now, None, outcome=ladder.escalate_to,
                          note=warning_note(what, trigger.deadline_at),
                          details={"trigger": trigger.id})  # fmt: skip
                for task in self.session.scalars(select(Task).where(
                        Task.trigger_id == trigger.id, Task.status == TaskStatus.QUEUED)):
                    task.priority = escalated_priority(task.priority)
                report.escalated += 1
                continue
            team = teams.get(trigger.id, "unassigned")
            if trigger.breached_at is None:
                trigger.breached_at, trigger.breach_team = now, team
                # JSON columns are replaced, not mutated, so the change is persisted.
                trigger.details = {
                    **trigger.details,
                    "missed_deadline": trigger.deadline_at.isoformat(),
                }
            self._log(case, "sla_breach", now, None, outcome=ladder.escalate_to,
                      note=breach_note(what, trigger.deadline_at),
                      details={"trigger": trigger.id, "team": team})  # fmt: skip
            why = f"SLA breach on trigger {trigger.kind}"
            self._advance_status(case, CaseStatus.ESCALATED, now, why)
            step = ladder.steps[trigger.step]
            trigger.deadline_at = restart_deadline(
                contactable_from=self._contactable(now, step, self._time_zone(trigger)),
                sla=step.sla)
            trigger.warned_at = None
            report.breached += 1

    def _watch_repossessions(self, now: datetime, report: TickReport) -> None:
        """Escalate a repossession step whose SLA ends within the watchdog's lead, once;
        record a breach once when it ended with the step undone, against the team holding it.
        Unlike a trigger's step, a breached repossession step keeps its deadline: its SLA is
        counted from the step before it (a court, an auction), a fresh window would hide how
        late it is, and it stays in ``overdue`` until it is taken."""
        rows = self.session.execute(
            select(RepossessionStep, Repossession.case_id, User.team)
            .join(Repossession, Repossession.id == RepossessionStep.repossession_id)
            .outerjoin(User, User.id == RepossessionStep.assignee_id)
            .where(
                RepossessionStep.done_at.is_(None),
                RepossessionStep.breached_at.is_(None),
                RepossessionStep.deadline_at <= now + self.watchdog_lead,
                or_(RepossessionStep.warned_at.is_(None), RepossessionStep.deadline_at <= now),
            )
            .order_by(RepossessionStep.deadline_at, RepossessionStep.id)
        ).all()
        for step, case_id, team in rows:
            case = self.session.get_one(Case, case_id)
            details: dict[str, Any] = {"repossession": step.repossession_id, "step": step.step}
            what = f"repossession step {step.step}"
            watched = Watched(step.deadline_at, step.warned_at)
            if judge(watched, now=now, lead=self.watchdog_lead) is Verdict.ESCALATE:
                step.warned_at = now
                self._log(case, "escalation", now, None, outcome="supervisor",
                          note=warning_note(what, step.deadline_at), details=details,
                          key=f"repo:{step.repossession_id}:{step.step}:escalation")  # fmt: skip
                report.escalated += 1
                continue
            step.breached_at = now
            step.breach_team = step_team(assigned=step.assignee_id is not None, team=team)
            self._log(case, "sla_breach", now, None, outcome="supervisor",
                      note=breach_note(what, step.deadline_at),
                      details={**details, "team": step.breach_team},
                      key=f"repo:{step.repossession_id}:{step.step}:sla_breach")  # fmt: skip
            why = f"SLA breach on repossession {step.step}"
            self._advance_status(case, CaseStatus.ESCALATED, now, why)
            report.breached += 1

    def _teams(self, trigger_ids: set[int]) -> dict[int, str]:
        rows = self.session.execute(
            select(Task.trigger_id, User.team)
            .join(User, User.id == Task.assignee_id)
            .where(Task.trigger_id.in_(trigger_ids), Task.status == TaskStatus.QUEUED)
        ).all()
        return {trigger_id: team or "unassigned" for trigger_id, team in rows}
