"""Coverage and KPIs of the follow-up engine, read from the store.

Coverage = obligations met within SLA ÷ all obligations. The obligations come from the book,
not from what the engine happened to raise: the triggers opened in the period, the repossession
steps whose SLA clock started in it, and what the book owes at ``as_of`` with no trigger to
show for it — a loan past due in the latest nightly snapshot without an open delinquency
trigger, an open collateral alert without a trigger, a promise to pay whose day is over and
that no tick decided. Those are *uncovered* and named (the tick's coverage check raises the
loans). A trigger is covered when it has had no SLA breach by ``as_of`` and its first action
came within its first SLA (or that SLA has not ended yet); a repossession step when it was
taken by its deadline, or is not due yet. A breach lowers coverage even when it was
escalated. Queued tasks that no active agent can take (the queues and agents as they are
now) are listed as *at risk* before their deadline passes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from lienwatch.followup.kpi import rate
from lienwatch.followup.model import Outcome, PromiseStatus
from lienwatch.followup.repossession import step_team
from lienwatch.followup.strategy import Strategy
from lienwatch.followup.triggers import ROUTINE_CHECKS, check_lead, current_checks
from lienwatch.services.followup.rates import (
    DELINQUENCY_KINDS,
    challenger_setup,
    cure_rates,
    roll_rates,
)
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import among, chunks
from lienwatch.store.followup import (
    LIVE_LOAN_STATUSES,
    OPEN_ALERT_STATUSES,
    owes_delinquency_follow_up,
    unstaffed_tasks,
)
from lienwatch.store.servicing import last_run_day
from lienwatch.store.tables import (
    Action,
    Alert,
    Loan,
    LoanSnapshot,
    Payment,
    Promise,
    Repossession,
    RepossessionStep,
    Task,
    Trigger,
    User,
)

AGENT_CONTACTS = ("call", "visit")
UNREACHED = {Outcome.NO_ANSWER.value, Outcome.WRONG_NUMBER.value, Outcome.UNREACHABLE.value}


@dataclass(frozen=True, slots=True)
class Breach:
    """A missed SLA: a trigger's (``trigger_id``) or a repossession step's (``repossession_id``,
    kind ``repossession:<step>``)."""

    loan: str
    trigger_id: int | None
    kind: str
    deadline_at: datetime
    team: str
    repossession_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "loan": self.loan,
            "trigger_id": self.trigger_id,
            "repossession_id": self.repossession_id,
            "kind": self.kind,
            "deadline_at": self.deadline_at.isoformat(timespec="seconds"),
            "team": self.team,
        }


@dataclass(frozen=True, slots=True)
class Uncovered:
    """Something the book owes a follow-up for, with no trigger: ``past_due`` (a loan, its
    DPD and bucket in the latest snapshot), ``alert`` (an open collateral alert) or
    ``promise`` (a promise to pay whose day is over, not decided)."""

    loan: str
    kind: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"loan": self.loan, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class AtRisk:
    """A queued task no active agent can take, before its deadline."""

    loan: str
    task_id: int
    skill: str
    team: str
    deadline_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"loan": self.loan, "task_id": self.task_id, "skill": self.skill,
                "team": self.team,
                "deadline_at": self.deadline_at.isoformat(timespec="seconds")}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Coverage:
    triggers: int
    open_triggers: int
    covered: int  # triggers and repossession steps within SLA
    breaches: tuple[Breach, ...]
    steps: int = 0  # repossession steps
    open_steps: int = 0
    steps_by_team: dict[str, tuple[int, int]] = field(default_factory=dict)  # (on time, all)
    uncovered: tuple[Uncovered, ...] = ()
    at_risk: tuple[AtRisk, ...] = ()

    @property
    def obligations(self) -> int:
        return self.triggers + self.steps + len(self.uncovered)

    @property
    def coverage(self) -> float:
        return self.covered / self.obligations if self.obligations else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "obligations": self.obligations,
            "triggers": self.triggers,
            "open_triggers": self.open_triggers,
            "repossession_steps": self.steps,
            "open_repossession_steps": self.open_steps,
            "covered": self.covered,
            "coverage": round(self.coverage, 4),
            "breaches": [b.as_dict() for b in self.breaches],
            "uncovered": [u.as_dict() for u in self.uncovered],
            "at_risk": [a.as_dict() for a in self.at_risk],
        }


def coverage(
    session: Session, *, as_of: datetime, strategy: Strategy, since: datetime | None = None,
    time_zone: str = "Asia/Shanghai",
) -> Coverage:  # fmt: skip
    """The coverage invariant over triggers opened and repossession steps started in
    ``[since, as_of]`` and what the book owes at ``as_of`` (business day in ``time_zone``),
    naming every loan behind a breach (a recorded breach, a late first action or step, or a
    deadline passed unseen) and every loan left uncovered."""
    opened = Trigger.opened_at <= as_of
    if since is not None:
        opened = and_(opened, Trigger.opened_at >= since)
    rows = session.execute(
        select(Trigger, Loan.ref).join(Loan, Loan.id == Trigger.loan_id).where(opened)
    ).all()
    breaches, covered, still_open = [], 0, 0
    for trigger, ref in rows:
        is_open = trigger.resolved_at is None or trigger.resolved_at > as_of
        still_open += is_open
        deadline = _breached_deadline(trigger, as_of, is_open)
        if deadline is None:
            covered += 1
        else:
            breaches.append(
                Breach(ref, trigger.id, trigger.kind, deadline, trigger.breach_team or "unassigned")
            )
    steps = _steps(session, as_of, since)
    by_team: dict[str, tuple[int, int]] = {}
    for step in steps:
        on_time, total = by_team.get(step.team, (0, 0))
        by_team[step.team] = (on_time + (step.breach is None), total + 1)
        if step.breach is None:
            covered += 1
        else:
            breaches.append(step.breach)
    breaches.sort(key=lambda b: (b.deadline_at, b.loan))
    return Coverage(
        len(rows), still_open, covered, tuple(breaches), steps=len(steps),
        open_steps=sum(s.open for s in steps), steps_by_team=by_team,
        uncovered=_uncovered(session, as_of, ZoneInfo(time_zone), strategy),
        at_risk=_at_risk(session, as_of),
    )  # fmt: skip


def business_as_of(session: Session, now: datetime, time_zone: str) -> datetime:
    """The moment a report describes by default: ``now``, unless the servicing run has not
    reached yesterday (a book loaded with history), then the end of the day after the last
    nightly snapshot, so that a book read weeks later does not show every trigger breached."""
    zone = ZoneInfo(time_zone)
    last = last_run_day(session)
    if last is None:
        return now
    end = datetime.combine(last + timedelta(days=2), time(), tzinfo=zone).astimezone(UTC)
    return min(now, end)


def _uncovered(
    session: Session, as_of: datetime, zone: ZoneInfo, strategy: Strategy
) -> tuple[Uncovered, ...]:
    """Past-due loans of the latest snapshot of a day over by ``as_of`` without an open
    delinquency trigger, open alerts without a trigger, promises whose day is over and that
    no tick has decided (kept, or broken and raised), and routine checks past their last
    call without a trigger, at ``as_of``."""
    today = as_of.astimezone(zone).date()  # the snapshots of days over by ``as_of``
    day = last_run_day(session, through=today - timedelta(days=1))
    found = []
    if day is not None:
        rows = session.execute(
            select(Loan.ref, LoanSnapshot.dpd, LoanSnapshot.bucket)
            .join(Loan, Loan.id == LoanSnapshot.loan_id)
            .where(LoanSnapshot.as_of == day,
                   owes_delinquency_follow_up(LoanSnapshot.loan_id, as_of))
            .order_by(Loan.ref)
        ).all()
        found += [Uncovered(ref, "past_due", f"{dpd} days past due ({bucket}) on {day}")
                  for ref, dpd, bucket in rows]  # fmt: skip
    alerts = session.execute(
        select(Loan.ref, Alert.id, Alert.type)
        .join(Loan, Loan.id == Alert.loan_id)
        .where(Alert.status.in_(OPEN_ALERT_STATUSES),
               func.coalesce(Alert.raised_at, Alert.started_at) <= as_of,
               ~exists().where(Trigger.alert_id == Alert.id, Trigger.opened_at <= as_of))
        .order_by(Loan.ref, Alert.id)
    ).all()  # fmt: skip
    found += [Uncovered(ref, "alert", f"alert {alert_id} {kind}") for ref, alert_id, kind in alerts]
    promises = session.execute(
        select(Loan.ref, Promise.id, Promise.promised_on)
        .join(Loan, Loan.id == Promise.loan_id)
        .where(Promise.status == PromiseStatus.OPEN, Promise.promised_on < today,
               Promise.made_on <= today)
        .order_by(Loan.ref, Promise.id)
    ).all()  # fmt: skip
    found += [Uncovered(ref, "promise", f"promise {promise_id} of {due} not decided")
              for ref, promise_id, due in promises]  # fmt: skip
    # Routine checks are raised by the ticks of their last-call day: the day ``as_of`` ends
    # or falls in (a report as of midnight describes the day before).
    found += _unchecked(session, (as_of - timedelta(microseconds=1)).astimezone(zone).date(),
                        as_of, strategy)  # fmt: skip
    return tuple(found)


def _unchecked(
    session: Session, today: date, as_of: datetime, strategy: Strategy
) -> list[Uncovered]:
    """The routine checks of live loans in their periods of ``today`` that are on or past
    their last call, with no trigger raised by ``as_of`` (the tick raises them that day)."""
    leads = {kind: check_lead(strategy, kind) for kind in ROUTINE_CHECKS}
    loans = session.execute(
        select(Loan.id, Loan.ref, Loan.disbursed_on)
        .where(Loan.status.in_(LIVE_LOAN_STATUSES), Loan.disbursed_on <= today)
    ).all()  # fmt: skip
    owed = {
        check.source_key: (ref, check)
        for loan_id, ref, disbursed in loans
        for check in current_checks(loan_id, disbursed, today, strategy)
        if check.last_call(today, leads[check.kind])
    }
    raised = set()
    for chunk in chunks(list(owed)):
        raised.update(session.scalars(
            select(Trigger.source_key)
            .where(Trigger.source_key.in_(chunk), Trigger.opened_at <= as_of)
        ))  # fmt: skip
    return [
        Uncovered(ref, check.kind.value,
                  f"{check.kind.value} {check.period} due {check.starts_on}, "
                  f"owed before {check.ends_on}")
        for key, (ref, check) in sorted(owed.items(), key=lambda item: (item[1][0], item[0]))
        if key not in raised
    ]  # fmt: skip


def _at_risk(session: Session, as_of: datetime) -> tuple[AtRisk, ...]:
    """Queued tasks nobody can take whose deadline has not passed yet."""
    stuck = {task.id: task for task in unstaffed_tasks(session) if task.deadline_at > as_of}
    query = select(Task.id, Loan.ref).join(Loan, Loan.id == Task.loan_id)
    refs = {task: ref for condition in among(session, Task.id, stuck)
            for task, ref in session.execute(query.where(condition))}
    return tuple(
        AtRisk(refs[t.id], t.id, t.skill, t.team or "any", t.deadline_at)
        for t in sorted(stuck.values(), key=lambda t: (t.deadline_at, t.id))
    )


@dataclass(frozen=True, slots=True)
class _StepStanding:
    """A repossession step as of a moment: who holds it, still open, and its breach if any."""

    team: str
    open: bool
    breach: Breach | None


def _steps(session: Session, as_of: datetime, since: datetime | None) -> list[_StepStanding]:
    """Repossession steps whose SLA clock started in ``[since, as_of]``: covered when taken by
    the deadline or not due yet at ``as_of``."""
    started = RepossessionStep.started_at <= as_of
    if since is not None:
        started = and_(started, RepossessionStep.started_at >= since)
    rows = session.execute(
        select(RepossessionStep, Loan.ref, User.team)
        .join(Repossession, Repossession.id == RepossessionStep.repossession_id)
        .join(Loan, Loan.id == Repossession.loan_id)
        .outerjoin(User, User.id == RepossessionStep.assignee_id)
        .where(started)
    ).all()
    found = []
    for step, ref, holder_team in rows:
        team = step.breach_team or step_team(assigned=step.assignee_id is not None,
                                             team=holder_team)  # fmt: skip
        done_at = step.done_at if step.done_at is not None and step.done_at <= as_of else None
        missed = done_at > step.deadline_at if done_at is not None else step.deadline_at < as_of
        breach = (
            Breach(ref, None, f"repossession:{step.step}", step.deadline_at, team,
                   repossession_id=step.repossession_id)
            if missed else None
        )  # fmt: skip
        found.append(_StepStanding(team, done_at is None, breach))
    return found


def _breached_deadline(trigger: Trigger, as_of: datetime, is_open: bool) -> datetime | None:
    """The deadline a trigger missed by ``as_of``, or None when it is within SLA."""
    if trigger.breached_at is not None and trigger.breached_at <= as_of:
        missed = (trigger.details or {}).get("missed_deadline")
        return datetime.fromisoformat(missed) if missed else trigger.breached_at
    first = trigger.first_action_at
    if first is not None and first <= as_of and first > trigger.first_deadline_at:
        return trigger.first_deadline_at
    # No action yet: a breach once the first SLA ended, unless the cause went away before.
    ended = min(as_of, trigger.resolved_at) if trigger.resolved_at else as_of
    if (first is None or first > as_of) and trigger.first_deadline_at < ended:
        return trigger.first_deadline_at
    if is_open and trigger.deadline_at < as_of and trigger.breached_at is None:
        return trigger.deadline_at
    return None


def kpis(
    session: Session,
    *,
    since: datetime,
    as_of: datetime,
    strategy: Strategy,
    catalogue: ProductCatalogue | None = None,
    time_zone: str = "Asia/Shanghai",
) -> dict[str, Any]:
    """Coverage, SLA breach rate, contact and right-party-contact rates, promise and
    promise-kept rates, cure rates by bucket and by arm (champion/challenger compared), roll
    rates by bucket, amount recovered, and the same per team and agent."""
    cover = coverage(session, as_of=as_of, strategy=strategy, since=since, time_zone=time_zone)
    actions = session.execute(
        select(Action.kind, Action.outcome, User.username, User.team)
        .outerjoin(User, User.id == Action.performed_by)
        .where(Action.performed_at.between(since, as_of), Action.kind.in_(AGENT_CONTACTS))
    ).all()
    reached = sum(1 for a in actions if a.outcome not in UNREACHED)
    rpc = sum(1 for a in actions if a.outcome and Outcome(a.outcome).right_party)
    promises = Counter(
        session.scalars(
            select(Promise.status).where(Promise.made_on.between(since.date(), as_of.date()))
        )
    )
    decided = promises[PromiseStatus.KEPT] + promises[PromiseStatus.BROKEN]
    return {
        "period": {"since": since.isoformat(), "as_of": as_of.isoformat()},
        "coverage": cover.as_dict(),
        "sla_breach_rate": rate(len(cover.breaches), cover.obligations).as_dict(),
        "agent_contacts": len(actions),
        "contact_rate": rate(reached, len(actions)).as_dict(),
        "rpc_rate": rate(rpc, len(actions)).as_dict(),
        "promise_rate": rate(sum(promises.values()), rpc).as_dict() if rpc else None,
        "promise_kept_rate": rate(promises[PromiseStatus.KEPT], decided).as_dict(),
        **cure_rates(session, since, as_of, catalogue),
        "challenger": challenger_setup(session, strategy, since, as_of),
        "roll_rates": roll_rates(session, since.date(), as_of.date(), catalogue),
        "recovered": _recovered(session, since, as_of),
        "teams": _per(actions, "team", cover.breaches, cover.steps_by_team),
        "agents": _per(actions, "username", (), {}),
    }


def _recovered(session: Session, since: datetime, as_of: datetime) -> int:
    """Fen paid in the period on loans that had a delinquency case in it."""
    followed = (
        select(Trigger.loan_id)
        .where(Trigger.kind.in_(DELINQUENCY_KINDS), Trigger.opened_at <= as_of)
        .where(or_(Trigger.resolved_at.is_(None), Trigger.resolved_at >= since))
    )
    paid = session.scalar(
        select(func.coalesce(func.sum(Payment.amount), 0)).where(
            Payment.loan_id.in_(followed),
            Payment.reversed_at.is_(None),
            Payment.paid_on.between(since.date(), as_of.date()),
        )
    )
    return int(paid or 0)


def _per(
    actions: list[Any],
    key: str,
    breaches: tuple[Breach, ...],
    steps: dict[str, tuple[int, int]],
) -> dict[str, Any]:
    """Contacts, RPC, promises and SLA breaches per ``key`` (team or agent); per team also
    the SLA adherence of the repossession steps it held (recovery's, typically)."""
    grouped: dict[str, list[Any]] = defaultdict(list)
    for action in actions:
        grouped[getattr(action, key) or "automation"].append(action)
    breach_count = Counter(b.team for b in breaches)
    out: dict[str, Any] = {}
    for name in sorted(set(grouped) | set(breach_count) | set(steps)):
        items = grouped.get(name, [])
        rpc = sum(1 for a in items if a.outcome and Outcome(a.outcome).right_party)
        out[name] = {
            "contacts": len(items),
            "rpc": rpc,
            "promises": sum(1 for a in items if a.outcome == Outcome.PROMISE_TO_PAY.value),
            "sla_breaches": breach_count.get(name, 0),
        }
        if name in steps:
            out[name]["repossession_sla_adherence"] = rate(*steps[name]).as_dict()
    return out
