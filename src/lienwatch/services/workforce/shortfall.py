"""The engine acting on a forecast shortfall, within what the strategy and the capacity rules
allow: each queued step forecast to breach is reassigned to a team of its skill with staff to
spare, substituted (a desk review with the GPS track instead of a field visit, where the rules
name the ladder), or ordered by unsecured exposure so that a breach falls on the smallest.
Each decision is an action on the case's timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from lienwatch.followup.model import Channel, TaskStatus
from lienwatch.services.followup import FollowupService
from lienwatch.services.timeline import log_action
from lienwatch.services.workforce.capacity import CapacityForecast
from lienwatch.store.tables import Action, Case, Task
from lienwatch.workforce.forecast import Work
from lienwatch.workforce.plan import Decision, decide
from lienwatch.workforce.rules import CapacityRules


@dataclass(frozen=True, slots=True)
class Acted:
    reassigned: int = 0
    substituted: int = 0
    ordered: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"reassigned": self.reassigned, "substituted": self.substituted,
                "ordered": self.ordered}  # fmt: skip


def act_on_shortfall(
    service: FollowupService, *, plan: CapacityForecast, rules: CapacityRules, at: datetime
) -> Acted:
    """Apply the decisions of ``plan`` to the queued tasks of the steps forecast to breach,
    the calls past the guard's daily cap first (a step not queued yet is decided when it is);
    a decision already taken is not taken again."""
    spare: dict[str, list[str]] = {}
    for pool in plan.pools:
        if pool.pool.team is not None and pool.rostered > pool.needed:
            spare.setdefault(pool.pool.skill, []).append(pool.pool.team)

    def substitutes(work: Work) -> list[str] | None:
        rule = rules.substitution(work.ladder, work.channel)
        return [channel.value for channel in rule.replacement] if rule else None

    counts = {"reassign": 0, "substitute": 0, "order": 0}
    for decision in decide((*plan.guard_bound, *plan.late), spare, substitutes):
        task = _queued(service, decision.work)
        if task is None or _taken(service, task, decision.kind):
            continue
        _apply(service, task, decision, at)
        counts[decision.kind] += 1
    return Acted(counts["reassign"], counts["substitute"], counts["order"])


def _queued(service: FollowupService, work: Work) -> Task | None:
    if work.trigger_id is None:
        return None
    return service.session.scalar(select(Task).where(
        Task.trigger_id == work.trigger_id, Task.status == TaskStatus.QUEUED,
        Task.channel == work.channel))  # fmt: skip


def _taken(service: FollowupService, task: Task, kind: str) -> bool:
    key = f"plan:{task.id}:{kind}"
    return (
        service.session.scalar(select(Action.id).where(Action.idempotency_key == key)) is not None
    )


def _apply(service: FollowupService, task: Task, decision: Decision, at: datetime) -> None:
    case = service.session.get_one(Case, task.case_id)
    details: dict[str, object] = {"task": task.id, **decision.detail, "by": "capacity plan"}
    if decision.kind == "reassign":
        task.team, task.assignee_id, task.assigned_at = (
            str(decision.detail["to_team"]), None, None)  # fmt: skip
    elif decision.kind == "substitute":
        task.status = TaskStatus.CANCELLED
        review = Task(key=f"{task.key}:sub", trigger_id=task.trigger_id, case_id=task.case_id,
                      loan_id=task.loan_id, step=task.step, channel=Channel.REVIEW.value,
                      skill="phone", team=None, due_at=task.due_at, deadline_at=task.deadline_at,
                      priority=task.priority)  # fmt: skip
        service.session.add(review)
        service.session.flush()
        details["replacement_task"] = review.id
    else:  # the plan chose it to breach, the smallest exposure: the others go first
        task.priority = 0
    log_action(service.session, case, loan_ref=service.loan_ref(case.loan_id), kind="plan",
               at=at, by=None, outcome=decision.kind,
               note=f"{task.channel} forecast to breach its SLA: {decision.kind}",
               details=details, key=f"plan:{task.id}:{decision.kind}")  # fmt: skip
