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
from lienwatch.store.db import chunks
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
    decisions = decide((*plan.guard_bound, *plan.late), spare, substitutes)
    queued = _queued(service, {d.work.trigger_id for d in decisions if d.work.trigger_id})
    taken = _taken(service, {task.id for task in queued.values()})
    for decision in decisions:
        task = queued.get((decision.work.trigger_id, decision.work.channel))
        if task is None or (task.id, decision.kind) in taken:
            continue
        _apply(service, task, decision, at)
        taken.add((task.id, decision.kind))
        counts[decision.kind] += 1
    return Acted(counts["reassign"], counts["substitute"], counts["order"])


MORNING_DAYS = 2  # the morning plan looks at today and tomorrow


def morning_plan(service: FollowupService, *, at: datetime, rules: CapacityRules) -> Acted:
    """The engine's morning pass (the scheduler's ``capacity_plan`` job, the demo's each
    working morning): forecast today and tomorrow, act on the steps forecast to breach."""
    from lienwatch.services.workforce.capacity import service_forecast

    plan = service_forecast(service, at=at, days=MORNING_DAYS, rules=rules)
    return act_on_shortfall(service, plan=plan, rules=rules, at=at)


def _queued(service: FollowupService, triggers: set[int]) -> dict[tuple[int, str], Task]:
    """The queued task of each (trigger, channel) of ``triggers`` (the first queued)."""
    found: dict[tuple[int, str], Task] = {}
    for chunk in chunks(sorted(triggers)):
        for task in service.session.scalars(
            select(Task).where(Task.trigger_id.in_(chunk), Task.status == TaskStatus.QUEUED)
            .order_by(Task.id)
        ):  # fmt: skip
            found.setdefault((task.trigger_id, task.channel), task)
    return found


def _taken(service: FollowupService, tasks: set[int]) -> set[tuple[int, str]]:
    """The (task, decision) pairs of ``tasks`` a plan already took (by the actions' keys)."""
    keys = [f"plan:{task}:{kind}" for task in sorted(tasks)
            for kind in ("reassign", "substitute", "order")]  # fmt: skip
    taken = set()
    for chunk in chunks(keys):
        for key in service.session.scalars(
            select(Action.idempotency_key).where(Action.idempotency_key.in_(chunk))
        ):  # fmt: skip
            _, task, kind = key.split(":")
            taken.add((int(task), kind))
    return taken


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
