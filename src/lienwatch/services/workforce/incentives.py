"""The incentives league of a period, read from the store: the acts the reward and penalty
scheme counts, each traced to its record on a case timeline (or, for a refused contact, to
the ledger entry the refusal left)."""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from lienwatch.followup.model import PromiseStatus, TriggerKind
from lienwatch.followup.triggers import DELINQUENCY
from lienwatch.ledger.entries import EntryKind
from lienwatch.services.workforce.schemes import scheme_versions
from lienwatch.store.db import chunks
from lienwatch.store.tables import (
    Action,
    Case,
    Complaint,
    LedgerEntry,
    Loan,
    Promise,
    Repossession,
    Task,
    Trigger,
    User,
)
from lienwatch.workforce.incentives import Act, Fact, League, Scheme, league, month_bounds

AGENT_ACTS = ("call", "visit", "review", "legal")


def incentive_league(
    session: Session, *, since: datetime, until: datetime, scheme: Scheme
) -> League:
    """The league of the acts in ``[since, until)``, each scored by the version of ``scheme``
    (the configured one) in force at its moment: ``scheme`` itself, or a version published
    since (:func:`scheme_versions`)."""
    people = {u.id: u for u in session.scalars(select(User))}
    window = (since, until)
    rows = [*_kept_promises(session, *window), *_first_contacts(session, *window),
            *_cures(session, *window), *_recoveries(session, *window),
            *_breaches(session, *window), *_upheld_complaints(session, *window)]  # fmt: skip
    refs = _loan_refs(session, {row[3] for row in rows})
    facts = [Fact(people[by].username, people[by].team or "", people[by].role, act, at, case,
                  refs.get(case, ""), trace) for by, act, at, case, trace in rows]  # fmt: skip
    by_name = {u.username: u for u in people.values()}
    facts += [Fact(user.username, user.team or "", user.role, Act.COMPLIANCE_REFUSAL, at, 0,
                   loan, trace, refused=True)
              for name, at, loan, trace in _refusals(session, *window)
              if (user := by_name.get(name)) is not None]  # fmt: skip
    return league(facts, scheme_versions(session, scheme), since=since, until=until)


def month_league(
    session: Session, *, month: str, at: datetime, zone: ZoneInfo, scheme: Scheme,
    team: str | None = None,
) -> tuple[League, datetime]:  # fmt: skip
    """The league of ``month`` (``YYYY-MM`` in ``zone``) to date at ``at``, and the moment
    it runs to; with ``team``, that team's agents alone (a supervisor's view)."""
    since, until = month_bounds(month, zone)
    end = min(until, at)
    table = incentive_league(session, since=since, until=end, scheme=scheme)
    if team is not None:
        agents = tuple(s for s in table.agents if s.team == team)
        table = replace(table, agents=agents,
                        teams={t: n for t, n in table.teams.items() if t == team})  # fmt: skip
    return table, end


Row = tuple[int, Act, datetime, int, str]


def _kept_promises(session: Session, since: datetime, until: datetime) -> list[Row]:
    rows = session.execute(
        select(Action.performed_by, Promise.decided_at, Promise.case_id, Action.id)
        .join(Action, Action.id == Promise.action_id)
        .where(Promise.status == PromiseStatus.KEPT, Promise.decided_at >= since,
               Promise.decided_at < until, Action.performed_by.is_not(None))
    ).all()  # fmt: skip
    return [(by, Act.KEPT_PROMISE, at, case, f"action:{action}") for by, at, case, action in rows]


def _first_contacts(session: Session, since: datetime, until: datetime) -> list[Row]:
    """A trigger's first follow-up made by an agent within its first SLA."""
    rows = session.execute(
        select(Action.performed_by, Action.performed_at, Action.case_id, Action.id, Trigger.id)
        .join(Trigger, and_(Trigger.case_id == Action.case_id,
                            Trigger.first_action_at == Action.performed_at))
        .where(Trigger.first_action_at >= since, Trigger.first_action_at < until,
               Trigger.first_action_at <= Trigger.first_deadline_at,
               Action.performed_by.is_not(None), Action.kind.in_(AGENT_ACTS))
    ).all()  # fmt: skip
    seen: set[int] = set()
    found = []
    for by, at, case, action, trigger in rows:
        if trigger not in seen:
            seen.add(trigger)
            found.append((by, Act.FIRST_CONTACT_IN_SLA, at, case, f"action:{action}"))
    return found


def _cures(session: Session, since: datetime, until: datetime) -> list[Row]:
    """A delinquency trigger resolved because the loan is current: the agent who last worked
    the case before it."""
    cured = session.execute(
        select(Trigger.id, Trigger.case_id, Trigger.resolved_at).where(
            Trigger.kind.in_([kind.value for kind in DELINQUENCY]),
            Trigger.resolution == "loan current",
            Trigger.resolved_at >= since, Trigger.resolved_at < until)
    ).all()  # fmt: skip
    last = _last_agent_acts(session, [(case, at) for _, case, at in cured])
    return [(by, Act.CURE, at, case, f"trigger:{trigger}")
            for trigger, case, at in cured
            if (by := last.get((case, at))) is not None]  # fmt: skip


def _recoveries(session: Session, since: datetime, until: datetime) -> list[Row]:
    """A recovered car, on the day recorded (midnight in the approval's zone): the days
    around the window are read, the exact window applied on the moments."""
    rows = session.execute(
        select(Repossession.assignee_id, Repossession.recovered_on, Repossession.case_id,
               Repossession.id, Repossession.approved_at)
        .where(Repossession.assignee_id.is_not(None),
               Repossession.recovered_on >= since.date() - timedelta(days=1),
               Repossession.recovered_on <= until.date() + timedelta(days=1))
    ).all()  # fmt: skip
    found = []
    for by, day, case, repossession, approved in rows:
        moment = datetime.combine(day, datetime.min.time(), tzinfo=approved.tzinfo)
        if since <= moment < until:
            found.append((by, Act.RECOVERED_CAR, moment, case, f"repossession:{repossession}"))
    return found


def _breaches(session: Session, since: datetime, until: datetime) -> list[Row]:
    """A trigger's SLA breach against the agent holding its task then (a broken-promise
    follow-up missed is its own act); a breach nobody held costs no agent."""
    rows = session.execute(
        select(Action.id, Action.performed_at, Action.case_id, Action.details)
        .where(Action.kind == "sla_breach", Action.performed_at >= since,
               Action.performed_at < until)
    ).all()  # fmt: skip
    ids = sorted({t for *_, details in rows if (t := (details or {}).get("trigger")) is not None})
    kinds: dict[int, str] = {}
    held: dict[int, list[tuple[datetime, int, int]]] = defaultdict(list)
    for chunk in chunks(ids):
        kinds.update(session.execute(select(Trigger.id, Trigger.kind)
                                     .where(Trigger.id.in_(chunk))).all())  # fmt: skip
        for trigger, due, task, holder in session.execute(
            select(Task.trigger_id, Task.due_at, Task.id, Task.assignee_id)
            .where(Task.trigger_id.in_(chunk), Task.assignee_id.is_not(None))
        ):  # fmt: skip
            held[trigger].append((due, task, holder))
    found = []
    for action, at, case, details in rows:
        trigger = (details or {}).get("trigger")
        if trigger not in kinds:
            continue  # a repossession step's breach: its holder is the recovery's assignee
        before = [entry for entry in held[trigger] if entry[0] <= at]
        if before:  # the task due last by then (the newest of a tie), as one query took it
            holder = max(before, key=lambda entry: (entry[0], entry[1]))[2]
            act = (Act.BROKEN_PROMISE_MISSED if kinds[trigger] == TriggerKind.BROKEN_PROMISE
                   else Act.SLA_BREACH)  # fmt: skip
            found.append((holder, act, at, case, f"action:{action}"))
    return found


def _upheld_complaints(session: Session, since: datetime, until: datetime) -> list[Row]:
    """An upheld complaint against the agent who last worked the case before it came in."""
    rows = session.execute(
        select(Complaint.id, Complaint.case_id, Complaint.received_at, Complaint.resolved_at)
        .where(Complaint.upheld.is_(True), Complaint.resolved_at >= since,
               Complaint.resolved_at < until)
    ).all()  # fmt: skip
    last = _last_agent_acts(session, [(case, received) for _, case, received, _ in rows])
    return [(by, Act.COMPLAINT_UPHELD, resolved, case, f"complaint:{complaint}")
            for complaint, case, received, resolved in rows
            if (by := last.get((case, received))) is not None]  # fmt: skip


def _refusals(
    session: Session, since: datetime, until: datetime
) -> list[tuple[str, datetime, str, str]]:
    """(agent, when, loan, ledger entry) of the contacts refused to an agent."""
    rows = session.execute(
        select(LedgerEntry.id, LedgerEntry.subject, LedgerEntry.body)
        .where(LedgerEntry.kind == EntryKind.CONTACT_REFUSED.value)
    ).all()  # fmt: skip
    found = []
    for entry, loan, body in rows:
        data: dict[str, Any] = json.loads(body)
        at = datetime.fromisoformat(data["at"])
        if data.get("by") and since <= at < until:
            found.append((data["by"], at, loan, f"ledger:{entry}"))
    return found


def _loan_refs(session: Session, case_ids: set[int]) -> dict[int, str]:
    return {case: ref
            for chunk in chunks(sorted(case_ids))
            for case, ref in session.execute(
                select(Case.id, Loan.ref).join(Loan, Loan.id == Case.loan_id)
                .where(Case.id.in_(chunk)))}  # fmt: skip


def _last_agent_acts(
    session: Session, moments: list[tuple[int, datetime]]
) -> dict[tuple[int, datetime], int]:
    """For each (case, moment): the agent of the last agent act on the case at or before the
    moment (the highest action id of a tie), in one query per chunk of cases."""
    acts: dict[int, list[tuple[datetime, int, int]]] = defaultdict(list)
    cases = sorted({case for case, _ in moments})
    latest = max((at for _, at in moments), default=None)
    for chunk in chunks(cases):
        for case, at, action, by in session.execute(
            select(Action.case_id, Action.performed_at, Action.id, Action.performed_by)
            .where(Action.case_id.in_(chunk), Action.performed_by.is_not(None),
                   Action.kind.in_(AGENT_ACTS), Action.performed_at <= latest)
        ):  # fmt: skip
            acts[case].append((at, action, by))
    for found in acts.values():
        found.sort()
    last = {}
    for case, moment in moments:
        found = acts.get(case, [])
        n = bisect.bisect_right(found, moment, key=lambda entry: entry[0])
        if n:
            last[(case, moment)] = found[n - 1][2]
    return last
