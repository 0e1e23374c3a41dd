"""The follow-up engine on the store: triggers, cases, the scheduler tick, agent outcomes.

:class:`FollowupService` holds the verbs (keyword-only, never committing: the caller owns the
transaction). One :meth:`FollowupService.tick` ingests new triggers (the ``events`` outbox,
open alerts, installments coming due, welcome calls, periodic checks, LTV breaches, reversed
payments, promises that fell due), resolves triggers whose cause went away and closes cases,
executes a batch of the due automatic steps through the compliance guard and queues the due
agent steps, assigns the queue, and runs the watchdog (escalate before a deadline, record a
breach after) over the triggers' steps and the repossession steps alike.
:meth:`FollowupService.run_due_steps` executes further batches of due steps without the tick's
lock, so several workers share a backlog (each batch in its own transaction).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from lienwatch.config import FollowupSettings
from lienwatch.followup.assignment import (
    AgentSlot,
    QueuedTask,
    assign,
    priority,
    staffing_gaps,
    unstaffed,
)
from lienwatch.followup.channels import Dispatcher, Message, Provider
from lienwatch.followup.compliance import (
    ComplianceGuard,
    ContactRequest,
    PastContact,
    authorize_tracker_command,
)
from lienwatch.followup.model import (
    Channel,
    FollowupError,
    FollowupRefused,
    Outcome,
    Role,
    TrackerCommand,
    TriggerKind,
    check_transition,
)
from lienwatch.followup.providers import build_providers
from lienwatch.followup.repossession import step_team
from lienwatch.followup.strategy import (
    LadderSpec,
    Segment,
    StepSpec,
    Strategy,
    configured_strategy,
)
from lienwatch.followup.triggers import CATCH_UP_DAYS, ROUTINE_CHECKS, check_lead, current_checks
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import chunks
from lienwatch.store.repositories import NotFoundError
from lienwatch.store.servicing import last_run_day
from lienwatch.store.tables import (
    Action,
    Alert,
    Borrower,
    Case,
    ContactAttempt,
    Event,
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

log = logging.getLogger(__name__)

DELINQUENCY = frozenset(
    {TriggerKind.MISSED_INSTALLMENT, TriggerKind.BUCKET_CHANGE, TriggerKind.BROKEN_PROMISE}
)
# Loan statuses that end every trigger of the loan.
FINAL_LOAN_STATUSES = ("settled", "closed", "written-off", "repossessed")
LIVE_LOAN_STATUSES = ("active", "delinquent", "charged-off")
OPEN_ALERT_STATUSES = ("open", "acknowledged")
HISTORY_DAYS = 7  # contact history the guard needs (the longest rule is 7 days)
URGENT = 10**15  # priority added to a task the watchdog escalated


@dataclass(frozen=True, slots=True)
class LoanView:
    """What the engine needs of a loan: identity, contact and the latest servicing figures."""

    id: int
    ref: str
    product: str
    status: str
    time_zone: str
    phone: str
    email: str | None
    address: str  # postal, for letters
    province: str
    dpd: int
    bucket: str
    unsecured: int


SCHEDULER_LOCK = 0x6C69656E  # advisory lock key of the follow-up scheduler ("lien")


@dataclass
class TickReport:
    raised: Counter[str] = field(default_factory=Counter)
    resolved: int = 0
    cases_opened: int = 0
    cases_closed: int = 0
    executed: int = 0  # automatic steps performed
    refused: int = 0  # contacts the guard refused
    queued: int = 0  # agent steps put into a queue
    assigned: int = 0
    escalated: int = 0  # warned by the watchdog before the deadline
    breached: int = 0
    skipped: int = 0  # 1 when another worker was running the scheduler
    steps: int = 0  # due steps claimed (then executed, refused, deferred or queued)
    adopted: int = 0  # backlog raised at go-live (past-due loans, open alerts, old events)
    uncovered: int = 0  # past-due loans found without a follow-up by the coverage check
    #: queued tasks no active agent can take, by ``team/skill``
    unstaffed: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "raised": dict(self.raised), "unstaffed": dict(self.unstaffed)}

    def add(self, other: TickReport) -> None:
        """Count another pass in (a tick and the step batches run after it)."""
        for name, value in other.__dict__.items():
            if isinstance(value, Counter):
                getattr(self, name).update(value)
            else:
                setattr(self, name, getattr(self, name) + value)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A trigger to raise unless its ``source_key`` was raised before."""

    loan_id: int
    kind: TriggerKind
    source_key: str
    anchor_at: datetime
    alert_type: str = ""
    alert_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


class FollowupService:
    """The follow-up verbs on one session; the caller owns the transaction."""

    def __init__(
        self,
        session: Session,
        *,
        strategy: Strategy,
        dispatcher: Dispatcher,
        catalogue: ProductCatalogue | None = None,
        agency: str = "lender",
        watchdog_lead: timedelta = timedelta(hours=2),
        business_zone: str = "Asia/Shanghai",
    ) -> None:
        if dispatcher.guard.profile.name != strategy.profile:
            raise FollowupError(
                f"profile: strategy {strategy.label} needs the {strategy.profile} guard, "
                f"not {dispatcher.guard.profile.name}"
            )
        unserved = sorted(
            channel.value
            for channel in strategy.channels
            if channel.automatic and channel.contacts_borrower
            and channel not in dispatcher.providers
        )  # fmt: skip
        if unserved:  # found at start-up, not when the first such step falls due
            raise FollowupError(
                f"providers: strategy {strategy.label} sends {', '.join(unserved)} but no "
                "provider is configured for it"
            )
        self.session = session
        self.strategy = strategy
        self.dispatcher = dispatcher
        self.catalogue = catalogue or ProductCatalogue()
        self.agency = agency
        self.watchdog_lead = watchdog_lead
        self.zone = ZoneInfo(business_zone)
        self._cancel: set[int] = set()  # resolved triggers whose queued tasks must go
        self._touched: set[int] = set()  # cases with a trigger resolved: may close now
        self._links: list[tuple[ContactAttempt, Action]] = []  # filled in after one flush
        self._snapshot_days: dict[date, date | None] = {}
        self._users: dict[str, User] = {}

    @classmethod
    def from_settings(
        cls,
        session: Session,
        settings: FollowupSettings,
        *,
        time_zone: str,
        catalogue: ProductCatalogue | None = None,
        providers: dict[Channel, Provider] | None = None,
    ) -> FollowupService:
        """The service as configured: the strategy (shipped name or file), its guard, and
        providers: ``providers`` when given, else ``settings.providers`` over the defaults
        (SMS, automated voice and letters to the log, e-mail to the ``smtp_*`` relay);
        ``time_zone`` is the business day's (``Settings.time_zone``)."""
        strategy = configured_strategy(settings.strategy)
        if providers is None:
            providers = build_providers(_provider_table(settings))
        dispatcher = Dispatcher(ComplianceGuard(strategy.profile), providers)
        return cls(
            session, strategy=strategy, dispatcher=dispatcher, catalogue=catalogue,
            agency=settings.agency, watchdog_lead=timedelta(hours=settings.watchdog_lead_h),
            business_zone=time_zone,
        )  # fmt: skip

    # ------------------------------------------------------------------ triggers and cases

    def raise_trigger(
        self,
        *,
        loan_id: int,
        kind: TriggerKind,
        source_key: str,
        anchor_at: datetime,
        now: datetime,
        details: dict[str, Any] | None = None,
    ) -> Trigger | None:
        """Open or join the loan's case with a trigger (e.g. the payment-anomaly hook); None
        when ``source_key`` was raised before."""
        candidate = Candidate(
            loan_id, TriggerKind(kind), source_key, anchor_at, details=details or {}
        )
        raised = self._raise_many([candidate], now, TickReport())
        self._close_finished_cases(now)
        return raised[0] if raised else None

    def _raise_many(
        self, candidates: Sequence[Candidate], now: datetime, report: TickReport
    ) -> list[Trigger]:
        keys = [c.source_key for c in candidates]
        known = set()
        for chunk in chunks(keys):
            known.update(
                self.session.scalars(
                    select(Trigger.source_key).where(Trigger.source_key.in_(chunk))
                )
            )
        fresh = _latest_delinquency_per_loan(
            list({c.source_key: c for c in candidates if c.source_key not in known}.values())
        )
        if not fresh:
            return []
        superseded = self._open_delinquency({c.loan_id for c in fresh if c.kind in DELINQUENCY})
        views = self._loan_views({c.loan_id for c in fresh}, now)
        missing = sorted({c.loan_id for c in fresh} - set(views))
        if missing:
            raise NotFoundError(f"loan_id: loan {missing[0]} does not exist")
        cases = self._open_cases({c.loan_id for c in fresh})
        new_loans = list(dict.fromkeys(c.loan_id for c in fresh if c.loan_id not in cases))
        cases.update(self._open_new_cases([views[i] for i in new_loans], now))
        report.cases_opened += len(new_loans)
        triggers = []
        for candidate in fresh:
            view, case = views[candidate.loan_id], cases[candidate.loan_id]
            segment = Segment(
                candidate.kind, view.bucket, view.product, candidate.alert_type, view.dpd > 0
            )
            ladder = self.strategy.ladder_for(segment, case.arm or "champion")
            first = ladder.steps[0]
            due = self._contactable(candidate.anchor_at + first.offset, first, view.time_zone)
            trigger = Trigger(
                case_id=case.id,
                loan_id=view.id,
                kind=candidate.kind.value,
                source_key=candidate.source_key,
                alert_id=candidate.alert_id,
                ladder=ladder.name,
                anchor_at=candidate.anchor_at,
                opened_at=now,
                step=0,
                next_due_at=due,
                deadline_at=due + first.sla,
                first_deadline_at=due + first.sla,
                details=candidate.details,
            )
            self.session.add(trigger)
            triggers.append(trigger)
            report.raised[candidate.kind.value] += 1
            if candidate.kind in DELINQUENCY:
                for older in superseded.pop(view.id, []):
                    self._resolve_trigger(older, now, "superseded")
        self.session.flush()
        return triggers

    def _open_delinquency(self, loan_ids: set[int]) -> dict[int, list[Trigger]]:
        """Open delinquency triggers by loan: a newer one takes over their ladder."""
        found: dict[int, list[Trigger]] = defaultdict(list)
        for chunk in chunks(list(loan_ids)):
            for trigger in self.session.scalars(
                select(Trigger).where(Trigger.loan_id.in_(chunk), Trigger.resolved_at.is_(None),
                                      Trigger.kind.in_([k.value for k in DELINQUENCY]))
            ):  # fmt: skip
                found[trigger.loan_id].append(trigger)
        return found

    def _open_new_cases(self, views: list[LoanView], now: datetime) -> dict[int, Case]:
        """One new case per loan, its arm drawn by stratum (the bucket) in arrival order."""
        if not views:
            return {}
        strata = self._stratum_counts()
        cases = {}
        for view in views:
            arm = self.strategy.arm_for(view.bucket, strata[view.bucket])
            strata[view.bucket] += 1
            cases[view.id] = Case(
                loan_id=view.id, status="new", priority=0, opened_at=now, status_at=now,
                strategy=self.strategy.label, arm=arm, stratum=view.bucket,
            )  # fmt: skip
        self.session.add_all(cases.values())
        self.session.flush()
        for case in cases.values():
            self._log(case, "status", now, None, note="case opened",
                      details={"from": None, "to": "new", "arm": case.arm})  # fmt: skip
        return cases

    def _stratum_counts(self) -> Counter[str]:
        """Cases per stratum under this strategy so far: the arm assignment's block index."""
        rows = self.session.execute(
            select(Case.stratum, func.count())
            .where(Case.strategy == self.strategy.label)
            .group_by(Case.stratum)
        )
        return Counter({stratum: count for stratum, count in rows})

    def _open_cases(self, loan_ids: Iterable[int]) -> dict[int, Case]:
        """The loans' open cases. They are read ``FOR KEY SHARE``, the lock a trigger joining
        one takes anyway (its foreign key): it waits for a step batch holding the case and
        then sees whether that batch closed it, so no trigger joins a closed case."""
        cases: dict[int, Case] = {}
        for chunk in chunks(list(loan_ids)):
            for case in self.session.scalars(
                select(Case)
                .where(Case.loan_id.in_(chunk), Case.status != "closed")
                .order_by(Case.id)
                .with_for_update(read=True, key_share=True)
                .execution_options(populate_existing=True)
            ):
                cases[case.loan_id] = case
        return cases

    def change_status(
        self, *, case_id: int, status: str, by: str | None, why: str, at: datetime
    ) -> Case:
        """Move a case along the status machine, logged on its timeline with who and why."""
        case = self.session.get(Case, case_id)
        if case is None:
            raise NotFoundError(f"case_id: case {case_id} does not exist")
        if not why.strip():
            raise FollowupError("why: a status change needs a reason")
        user = self._user(by) if by else None
        self._move(case, status, at, user.id if user else None, why)
        return case

    def _move(self, case: Case, status: str, at: datetime, by: int | None, why: str) -> None:
        target = check_transition(case.status, status)
        previous = case.status
        case.status, case.status_at = target.value, at
        if target.value == "closed":
            case.closed_at, case.close_reason = at, why
        self._log(case, "status", at, by, note=why, details={"from": previous, "to": target.value})

    def _advance_status(self, case: Case, status: str, at: datetime, why: str) -> None:
        """Move forward if the machine allows it; a case already further along stays."""
        try:
            check_transition(case.status, status)
        except FollowupError:
            return
        self._move(case, status, at, None, why)

    def _log(
        self,
        case: Case,
        kind: str,
        at: datetime,
        by: int | None,
        *,
        outcome: str | None = None,
        note: str | None = None,
        details: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> Action:
        action = Action(
            case_id=case.id,
            kind=kind,
            performed_at=at,
            performed_by=by,
            outcome=outcome,
            note=note,
            details=details or {},
            idempotency_key=key or f"{kind}:{case.id}:{at:%Y%m%dT%H%M%S}:{uuid4().hex[:16]}",
        )
        self.session.add(action)
        return action

    # ------------------------------------------------------------------ the tick

    def tick(self, *, now: datetime, step_limit: int | None = None) -> TickReport:
        """One scheduler pass at ``now``: ingest, resolve, execute and queue one batch of due
        steps (at most ``step_limit``, all when None), assign, watch.

        Steps left due beyond the batch wait for :meth:`run_due_steps` (the tick job drains
        them after this transaction) or the next tick. The tasks and deadlines of steps run in
        later batches are assigned and watched by the next tick."""
        _check_now(now)
        if step_limit is not None:
            _check_limit(step_limit, "step_limit")
        report = TickReport()
        if not self._scheduler_lock():
            report.skipped = 1
            return report
        if not self._seen_before():
            report.add(self.adopt_backlog(now=now))
        if report.adopted:
            log.warning("go-live: %d follow-ups adopted from the book's backlog (past-due loans, "
                        "open alerts, routine checks on their last call), their SLAs counted "
                        "from %s", report.adopted, now.isoformat())  # fmt: skip
        self._raise_many(self._candidates(now), now, report)
        report.uncovered += len(self._raise_many(self.uncovered_delinquency(now), now, report))
        if report.uncovered:
            log.warning("coverage check: %d past-due loans had no follow-up; raised at %s",
                        report.uncovered, now.isoformat())  # fmt: skip
        self._decide_promises(now, report)
        self._resolve(now, report)
        self._run_due_steps(now, report, step_limit)
        self._assign(now, report)
        self._watch(now, report)
        self._watch_repossessions(now, report)
        report.cases_closed += self._close_finished_cases(now)
        return report

    def run_due_steps(self, *, now: datetime, limit: int) -> TickReport:
        """Execute the due automatic steps and queue the due agent steps, at most ``limit``,
        oldest due first, then close the cases left without an open trigger.

        Needs no scheduler lock: any number of workers may call it at the same time, each
        batch in its own transaction (the caller's), and each step is claimed by one of them
        (see :meth:`_run_due_steps`). ``steps`` in the report counts the claimed steps: fewer
        than ``limit`` means no more were due and free."""
        _check_now(now)
        _check_limit(limit, "limit")
        report = TickReport()
        self._run_due_steps(now, report, limit)
        report.cases_closed += self._close_finished_cases(now)
        return report

    def _scheduler_lock(self) -> bool:
        """One tick at a time per database: on PostgreSQL a transaction-level advisory lock
        that several workers try (those that do not get it skip this tick, they never wait);
        SQLite has a single writer anyway. Due steps are claimed with row locks instead (see
        :meth:`_run_due_steps`), so batches of them run in parallel with a tick."""
        if self.session.get_bind().dialect.name != "postgresql":
            return True
        return bool(self.session.scalar(select(func.pg_try_advisory_xact_lock(SCHEDULER_LOCK))))

    def _today(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    def _midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(), tzinfo=self.zone).astimezone(UTC)

    def _snapshot_day(self, now: datetime) -> date | None:
        """The last business day the servicing run has reached by today: normally yesterday
        (a run describes its day's end, so the nightly run of today is made tomorrow), today
        when someone ran it early (a go-live on a book serviced up to today)."""
        today = self._today(now)
        if today not in self._snapshot_days:
            self._snapshot_days[today] = last_run_day(self.session, through=today)
        return self._snapshot_days[today]

    def adopt_backlog(self, *, now: datetime) -> TickReport:
        """Go-live on an existing book (the first tick does it; ``lienwatch followup adopt``
        on demand): raise a trigger for every loan past due in the latest nightly snapshot,
        every open collateral alert, every bucket change that predates the engine and every
        routine check past its last call, anchored at ``now`` (their original SLAs ended
        before anyone was watching); later ticks keep every anchor as it is. Safe to
        repeat: what was raised is not raised again, so a second book imported later is
        adopted the same way."""
        report = TickReport()
        loans = self._live_loans(self._today(now))
        backlog = [*self._from_events(now), *self._from_alerts(now),
                   *self._overdue_checks(now, loans)]  # fmt: skip
        views = self._loan_views({c.loan_id for c in backlog}, now)
        old = [c for c in backlog
               if c.kind not in DELINQUENCY or views[c.loan_id].dpd > 0]  # cured before go-live
        raised = self._raise_many([_adopted(c, now) for c in old], now, report)
        self._consume_pending_events(now)  # the book's state is adopted whole: its news is old
        owed = self.uncovered_delinquency(now)
        raised += self._raise_many([_adopted(c, now) for c in owed], now, report)
        report.adopted += len(raised)
        report.cases_closed += self._close_finished_cases(now)
        return report

    def _consume_pending_events(self, now: datetime) -> None:
        """Mark the bucket changes up to today not consumed yet as consumed: at go-live the
        loans' state in the latest snapshot is what is adopted, not the changes that led to
        it."""
        tomorrow = self._midnight(self._today(now) + timedelta(days=1))
        self.session.execute(
            update(Event)
            .where(Event.kind == "bucket_changed", Event.consumed_at.is_(None),
                   Event.occurred_at < tomorrow)
            .values(consumed_at=now)
        )  # fmt: skip

    def _seen_before(self) -> bool:
        """Whether the engine has worked this book: a trigger raised or an event consumed."""
        return bool(
            self.session.scalar(select(exists().where(Trigger.id.is_not(None))))
            or self.session.scalar(select(exists().where(Event.consumed_at.is_not(None))))
        )

    def uncovered_delinquency(self, now: datetime) -> list[Candidate]:
        """The coverage check: every loan past due in the latest nightly snapshot must have an
        open delinquency trigger; those without one (a book imported after go-live, a trigger
        lost) are returned as triggers to raise at ``now``, found by the coverage check."""
        day = self._snapshot_day(now)
        if day is None:
            return []
        rows = self.session.execute(
            select(LoanSnapshot.loan_id, LoanSnapshot.bucket, LoanSnapshot.dpd, Loan.product)
            .join(Loan, Loan.id == LoanSnapshot.loan_id)
            .where(LoanSnapshot.as_of == day, owes_delinquency_follow_up(LoanSnapshot.loan_id))
            .order_by(LoanSnapshot.loan_id)
        ).all()
        found = []
        for loan_id, bucket, dpd, product in rows:
            names = self.catalogue.get(product).buckets.names
            first_late = bucket not in names or names.index(bucket) <= 1
            kind = TriggerKind.MISSED_INSTALLMENT if first_late else TriggerKind.BUCKET_CHANGE
            found.append(
                Candidate(loan_id, kind, f"book:{loan_id}:{day.isoformat()}", now,
                          details={"to": bucket, "dpd": dpd, "found_by": "coverage check"})
            )  # fmt: skip
        return found

    def _candidates(self, now: datetime) -> list[Candidate]:
        return [
            *self._from_events(now),
            *self._from_alerts(now),
            *self._routine(now),
            *self._from_snapshots(now),
            *self._from_reversals(now),
        ]

    def _from_events(self, now: datetime) -> list[Candidate]:
        """``bucket_changed`` events: out of the first bucket is a missed installment, a move
        to a deeper bucket a bucket change. A run as of day D describes the end of D, so its
        events are known once D is over in the business zone, anchored at the next midnight
        UTC. A move to the bucket of the loan's open delinquency trigger (one the coverage
        check raised from a snapshot made early) is news no more."""
        rows = self.session.execute(
            select(Event, Loan.product)
            .join(Loan, Loan.id == Event.loan_id)
            .where(
                Event.consumed_at.is_(None),
                Event.kind == "bucket_changed",
                Event.occurred_at < self._midnight(self._today(now)),
            )
            .order_by(Event.id)
        ).all()
        followed = self._open_delinquency({event.loan_id for event, _ in rows})
        found = []
        for event, product in rows:
            event.consumed_at = now
            names = self.catalogue.get(product).buckets.names
            was = names.index(event.payload["from"]) if event.payload.get("from") in names else 0
            becomes = names.index(event.payload["to"])
            if becomes <= was:
                continue  # an improvement: triggers resolve when the loan is current again
            if any((t.details or {}).get("to") == event.payload["to"]
                   for t in followed.get(event.loan_id, ())):  # fmt: skip
                continue
            kind = TriggerKind.MISSED_INSTALLMENT if was == 0 else TriggerKind.BUCKET_CHANGE
            found.append(
                Candidate(
                    event.loan_id,
                    kind,
                    f"event:{event.key}",
                    event.occurred_at + timedelta(days=1),
                    details={"from": event.payload.get("from"), "to": event.payload["to"]},
                )
            )
        return found

    def _from_alerts(self, now: datetime) -> list[Candidate]:
        rows = self.session.scalars(
            select(Alert).where(
                Alert.loan_id.is_not(None),
                Alert.status.in_(OPEN_ALERT_STATUSES),
                ~exists().where(Trigger.alert_id == Alert.id),
                func.coalesce(Alert.raised_at, Alert.started_at) <= now,
            )
        )
        return [
            Candidate(
                alert.loan_id,
                TriggerKind.COLLATERAL_ALERT,
                f"alert:{alert.id}",
                alert.raised_at or alert.started_at,
                alert_type=alert.type,
                alert_id=alert.id,
                details={"alert_type": alert.type, "severity": alert.severity},
            )
            for alert in rows
            if alert.loan_id is not None
        ]

    def _routine(self, now: datetime) -> list[Candidate]:
        """Welcome calls after disbursement and the periodic collateral checks: each check on
        the day it falls due, or on its last call when nobody raised it then (a go-live in
        the middle of its period; see ``followup.triggers``)."""
        today = self._today(now)
        welcome_after = self.strategy.routine.welcome_after
        loans, found = self._live_loans(today), []
        for loan_id, disbursed in loans:
            if 0 <= (today - welcome_after - disbursed).days < CATCH_UP_DAYS:
                anchor = max(self._midnight(disbursed + welcome_after), now)
                found.append(
                    Candidate(loan_id, TriggerKind.WELCOME_CALL, f"welcome:{loan_id}", anchor)
                )
            for check in current_checks(loan_id, disbursed, today, self.strategy):
                if check.just_due(today):
                    anchor = max(self._midnight(check.starts_on), now)
                    found.append(Candidate(loan_id, check.kind, check.source_key, anchor))
        return [*found, *self._overdue_checks(now, loans)]

    def _overdue_checks(self, now: datetime, loans: list[tuple[int, date]]) -> list[Candidate]:
        """The routine checks of ``loans`` on their last call (or past it), not raised when
        they fell due: raised at ``now`` (a trigger raised before is not raised again)."""
        today = self._today(now)
        leads = {kind: check_lead(self.strategy, kind) for kind in ROUTINE_CHECKS}
        return [
            Candidate(loan_id, check.kind, check.source_key, now,
                      details={"found_by": "last call", "owed_before": check.ends_on.isoformat()})
            for loan_id, disbursed in loans
            for check in current_checks(loan_id, disbursed, today, self.strategy)
            if not check.just_due(today) and check.last_call(today, leads[check.kind])
        ]  # fmt: skip

    def _live_loans(self, today: date) -> list[tuple[int, date]]:
        """(loan id, disbursement day) of the loans that owe routine follow-up."""
        return list(self.session.execute(
            select(Loan.id, Loan.disbursed_on)
            .where(Loan.status.in_(LIVE_LOAN_STATUSES), Loan.disbursed_on <= today)
        ).all())  # fmt: skip

    def _from_snapshots(self, now: datetime) -> list[Candidate]:
        """Installments coming due (pre-due reminders) and loans over their LTV cap."""
        day = self._snapshot_day(now)
        if day is None:
            return []
        today = self._today(now)
        lead = self.strategy.routine.pre_due_lead
        rows = self.session.execute(
            select(
                LoanSnapshot.loan_id,
                LoanSnapshot.next_due_on,
                LoanSnapshot.over_ltv_cap,
                LoanSnapshot.dpd,
            ).where(
                LoanSnapshot.as_of == day,
                LoanSnapshot.status.in_(LIVE_LOAN_STATUSES),
                or_(
                    LoanSnapshot.over_ltv_cap,
                    LoanSnapshot.next_due_on.between(today + timedelta(days=1), today + lead),
                ),
            )
        ).all()
        found = []
        for loan_id, next_due, over_cap, dpd in rows:
            if next_due is not None and today < next_due <= today + lead and dpd == 0:
                anchor = max(self._midnight(next_due - lead), now)
                found.append(
                    Candidate(
                        loan_id,
                        TriggerKind.PRE_DUE,
                        f"pre_due:{loan_id}:{next_due.isoformat()}",
                        anchor,
                        details={"due_on": next_due.isoformat()},
                    )
                )
            if over_cap:
                found.append(
                    Candidate(
                        loan_id, TriggerKind.LTV_BREACH, f"ltv_breach:{loan_id}:{day:%Y-%m}", now
                    )
                )
        return found

    def _from_reversals(self, now: datetime) -> list[Candidate]:
        """The payment-anomaly hook fed by servicing: a reversed (bounced) payment."""
        rows = self.session.execute(
            select(Payment.id, Payment.loan_id, Payment.reversed_at, Payment.reversal_reason).where(
                Payment.reversed_at.is_not(None),
                Payment.reversed_at <= now,
                Payment.reversed_at > now - timedelta(days=CATCH_UP_DAYS),
            )
        ).all()
        return [
            Candidate(
                loan_id,
                TriggerKind.PAYMENT_ANOMALY,
                f"reversal:{payment_id}",
                at,
                details={"payment_id": payment_id, "reason": reason},
            )
            for payment_id, loan_id, at, reason in rows
        ]

    def _decide_promises(self, now: datetime, report: TickReport) -> None:
        """A promise whose date has passed is kept when payments from the day it was made to
        its date cover its amount; a broken one is a new trigger."""
        today = self._today(now)
        promises = self.session.scalars(
            select(Promise).where(Promise.status == "open", Promise.promised_on < today)
        ).all()
        broken = []
        for promise in promises:
            paid = self.session.scalar(
                select(func.coalesce(func.sum(Payment.amount), 0)).where(
                    Payment.loan_id == promise.loan_id,
                    Payment.reversed_at.is_(None),
                    Payment.paid_on.between(promise.made_on, promise.promised_on),
                )
            )
            promise.status = "kept" if paid >= promise.amount else "broken"
            promise.decided_at = now
            if promise.status == "broken":
                anchor = self._midnight(promise.promised_on + timedelta(days=1))
                broken.append(
                    Candidate(
                        promise.loan_id,
                        TriggerKind.BROKEN_PROMISE,
                        f"promise:{promise.id}",
                        anchor,
                        details={"promise_id": promise.id},
                    )
                )
        self._raise_many(broken, now, report)

    # ------------------------------------------------------------------ resolution

    def _resolve(self, now: datetime, report: TickReport) -> None:
        """Resolve triggers whose cause is gone; close cases left without an open trigger.

        The triggers and their cases are locked as a step batch locks them: the tick waits for
        a batch working on one of those cases and a batch skips the cases the tick holds, so
        whichever resolves a case's last open trigger sees the other's resolutions when it
        decides whether to close the case."""
        day = self._snapshot_day(now)
        snapshot = and_(LoanSnapshot.loan_id == Trigger.loan_id, LoanSnapshot.as_of == day)
        rows = self.session.execute(
            select(Trigger, Loan.status, Alert.status)
            .join(Case, Case.id == Trigger.case_id)
            .join(Loan, Loan.id == Trigger.loan_id)
            .outerjoin(LoanSnapshot, snapshot)
            .outerjoin(Alert, Alert.id == Trigger.alert_id)
            .where(
                Trigger.resolved_at.is_(None),
                or_(
                    Loan.status.in_(FINAL_LOAN_STATUSES),
                    and_(Trigger.kind.in_([k.value for k in DELINQUENCY]), LoanSnapshot.dpd == 0),
                    and_(Trigger.alert_id.is_not(None), Alert.status.not_in(OPEN_ALERT_STATUSES)),
                ),
            )
            .order_by(Trigger.id)
            .with_for_update(key_share=True, of=[Trigger, Case])
            .execution_options(populate_existing=True)
        ).all()
        for trigger, loan_status, alert_status in rows:
            if loan_status in FINAL_LOAN_STATUSES:
                reason = f"loan {loan_status}"
            elif trigger.alert_id is not None and alert_status not in OPEN_ALERT_STATUSES:
                reason = f"alert {alert_status}"
            else:
                reason = "loan current"
            self._resolve_trigger(trigger, now, reason)
            report.resolved += 1

    def _resolve_trigger(self, trigger: Trigger, now: datetime, reason: str) -> None:
        trigger.resolved_at, trigger.resolution = now, reason
        self._cancel.add(trigger.id)
        self._touched.add(trigger.case_id)

    def _cancel_tasks(self, now: datetime) -> None:
        """Take the queued tasks of triggers resolved since the last call off the queues."""
        ids, self._cancel = sorted(self._cancel), set()
        for chunk in chunks(ids):
            self.session.execute(
                update(Task).where(Task.trigger_id.in_(chunk), Task.status == "queued")
                .values(status="cancelled", done_at=now)
            )  # fmt: skip

    def _close_finished_cases(self, now: datetime) -> int:
        """Close the cases whose last open trigger was resolved, with the reasons; also
        takes the resolved triggers' tasks off the queues."""
        self._cancel_tasks(now)
        self.session.flush()
        touched, self._touched = sorted(self._touched), set()
        open_trigger = exists().where(Trigger.case_id == Case.id, Trigger.resolved_at.is_(None))
        cases = [
            case
            for chunk in chunks(touched)
            for case in self.session.scalars(
                select(Case)
                .where(Case.id.in_(chunk), Case.status != "closed", ~open_trigger)
                .execution_options(populate_existing=True)
            )
        ]
        reasons: dict[int, set[str]] = defaultdict(set)
        for chunk in chunks([case.id for case in cases]):
            for case_id, resolution in self.session.execute(
                select(Trigger.case_id, Trigger.resolution).where(Trigger.case_id.in_(chunk))
            ):
                reasons[case_id].add(resolution or "")
        for case in cases:
            why = "; ".join(sorted(r for r in reasons[case.id] if r))
            self._move(case, "closed", now, None, why)
        return len(cases)

    # ------------------------------------------------------------------ steps

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
        again in a fresh statement. SQLite has one writer and needs none of this."""
        queued = exists().where(Task.trigger_id == Trigger.id, Task.status == "queued")
        claimed = self.session.scalars(
            select(Trigger)
            .join(Case, Case.id == Trigger.case_id)
            .where(Trigger.resolved_at.is_(None), Trigger.next_due_at <= now, ~queued)
            .order_by(Trigger.next_due_at, Trigger.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=[Trigger, Case])
            .execution_options(populate_existing=True)
        ).all()
        report.steps += len(claimed)
        taken = self._queued_triggers([t.id for t in claimed])
        due = [trigger for trigger in claimed if trigger.id not in taken]
        if not due:
            return
        views = self._loan_views({t.loan_id for t in due}, now)
        cases = {
            c.id: c
            for chunk in chunks(list({t.case_id for t in due}))
            for c in self.session.scalars(
                select(Case).where(Case.id.in_(chunk)).execution_options(populate_existing=True)
            )
        }
        history = self._history({t.loan_id for t in due}, now)
        for trigger in due:
            step = self._ladder(trigger, cases[trigger.case_id]).steps[trigger.step]
            case, view = cases[trigger.case_id], views[trigger.loan_id]
            if step.status:
                self._advance_status(
                    case, step.status.value, now, f"ladder {trigger.ladder} step {trigger.step + 1}"
                )
            if step.channel.automatic:
                self._execute(trigger, case, view, step, now, history[view.id], report)
            else:
                self._queue(trigger, view, step, now)
                report.queued += 1
        self._link_attempts()

    def _queued_triggers(self, trigger_ids: list[int]) -> set[int]:
        """The triggers among ``trigger_ids`` with an agent step waiting in a queue."""
        return {
            trigger_id
            for chunk in chunks(trigger_ids)
            for trigger_id in self.session.scalars(
                select(Task.trigger_id).where(Task.trigger_id.in_(chunk), Task.status == "queued")
            )
        }

    def _link_attempts(self) -> None:
        """Point the contact attempts logged in a batch at their actions (one flush)."""
        if self._links:
            self.session.flush()
            for attempt, action in self._links:
                attempt.action_id = action.id
            self._links.clear()

    def _ladder(self, trigger: Trigger, case: Case) -> LadderSpec:
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
        trigger: Trigger,
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
                key=_step_key(trigger),
            )
            self._step_done(trigger, case, now)
            report.executed += 1
            return
        channel, address = step.channel, view.phone
        if channel is Channel.EMAIL and not view.email:
            channel = Channel.SMS  # no address on file: the reminder goes by text instead
        elif channel is Channel.EMAIL:
            address = view.email or ""
        elif channel is Channel.LETTER:
            address = view.address
        decision = self.dispatcher.guard.check(
            self._request(view, channel, now, case, trigger), history
        )
        if not decision.allowed or decision.permit is None:
            self._refused(
                trigger, case, view, channel, now, decision.rule, decision.next_allowed_at
            )
            report.refused += 1
            return
        message = Message(address, _text(trigger, view), _step_key(trigger), subject="lienwatch")
        delivery = self.dispatcher.send(decision.permit, channel, message)
        attempts = [_attempt(a) for a in delivery.attempts]
        outcome = Outcome.DELIVERED.value if delivery.delivered else "failed"
        action = self._log(
            case,
            channel.value,
            now,
            None,
            outcome=outcome,
            details={
                "trigger": trigger.id,
                "step": trigger.step,
                "attempts": attempts,
                "requested": step.channel.value,
            },
            key=_step_key(trigger),
        )
        attempt = ContactAttempt(loan_id=view.id, channel=channel.value, at=now,
                                 agency=self.agency, allowed=True, rule="ok")  # fmt: skip
        self.session.add(attempt)
        self._links.append((attempt, action))
        history.append(PastContact(now, channel))
        if delivery.delivered:
            self._step_done(trigger, case, now)
            report.executed += 1
        else:
            trigger.next_due_at = now + timedelta(hours=1)  # retried on a later tick

    def _request(
        self, view: LoanView, channel: Channel, at: datetime, case: Case, trigger: Trigger
    ) -> ContactRequest:
        routine = TriggerKind(trigger.kind) not in DELINQUENCY and view.dpd == 0
        return ContactRequest(
            loan=view.ref,
            channel=channel,
            at=at,
            time_zone=view.time_zone,
            purpose="routine" if routine else "collection",
            do_not_contact=case.hold == "do_not_contact",
            dispute_hold=case.hold == "dispute",
        )

    def _refused(
        self,
        trigger: Trigger,
        case: Case,
        view: LoanView,
        channel: Channel,
        now: datetime,
        rule: str,
        next_allowed: datetime | None,
    ) -> None:
        """Record a refusal; wait for the next allowed time, or with no such time (a hold)
        hand the step to the supervisor's judgement by escalating the case."""
        self.session.add(
            ContactAttempt(
                loan_id=view.id,
                channel=channel.value,
                at=now,
                agency=self.agency,
                allowed=False,
                rule=rule,
                next_allowed_at=next_allowed,
            )
        )
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
        self._advance_status(case, "escalated", now, f"contact refused: {rule}")
        self._step_done(trigger, case, now)

    def _contactable(self, due: datetime, step: StepSpec, time_zone: str) -> datetime:
        """When a step can start: a contact step waits for the borrower's contact hours, so
        its SLA clock never runs through quiet hours (an alert at 02:13 is called at 08:00)."""
        if not step.channel.keeps_contact_hours:
            return due
        return self.dispatcher.guard.contact_window_opens(due, time_zone)

    def _time_zone(self, trigger: Trigger) -> str:
        loan = self.session.get(Loan, trigger.loan_id)
        assert loan is not None
        return loan.time_zone

    def _step_done(self, trigger: Trigger, case: Case, at: datetime) -> None:
        """Move the trigger to its next step; a finished routine ladder resolves the trigger,
        a finished delinquency or alert ladder repeats its last step."""
        if trigger.first_action_at is None:
            trigger.first_action_at = at
        if case.status == "new":
            self._move(case, "in_progress", at, None, f"first follow-up of trigger {trigger.kind}")
        ladder = self._ladder(trigger, case)
        if trigger.step + 1 < len(ladder.steps):
            trigger.step += 1
            step = ladder.steps[trigger.step]
            due = max(trigger.anchor_at + step.offset, at)
        elif _repeats(trigger):
            step = ladder.steps[trigger.step]
            due = at + ladder.repeat_every
        else:
            self._resolve_trigger(trigger, at, "completed")
            return
        trigger.next_due_at = self._contactable(due, step, self._time_zone(trigger))
        trigger.deadline_at = trigger.next_due_at + step.sla
        trigger.warned_at = None

    def _queue(self, trigger: Trigger, view: LoanView, step: StepSpec, now: datetime) -> None:
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
                priority=priority(unsecured=view.unsecured, dpd=view.dpd),
            )
        )

    # ------------------------------------------------------------------ assignment

    def _assign(self, now: datetime, report: TickReport) -> None:
        """Release tasks held by absent agents or left from an earlier day, then hand the
        queue out by urgency within each agent's remaining capacity for today."""
        self._cancel_tasks(now)
        day_start = self._midnight(self._today(now))
        absent = select(User.id).where(User.active.is_(False))
        self.session.execute(
            update(Task)
            .where(
                Task.status == "queued",
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
        slots = [_slot(agent, taken.get(agent.id, 0)) for agent in agents]
        queued = _unassigned_tasks(self.session)
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
        for chunk in chunks(list(keys)):
            known.update(self.session.scalars(
                select(Action.idempotency_key).where(Action.idempotency_key.in_(chunk))
            ))  # fmt: skip
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

    # ------------------------------------------------------------------ the watchdog

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
            if trigger.deadline_at > now:
                trigger.warned_at = now
                self._log(
                    case,
                    "escalation",
                    now,
                    None,
                    outcome=ladder.escalate_to,
                    note=f"SLA of step {trigger.step + 1} ends {trigger.deadline_at:%m-%dT%H:%M}",
                    details={"trigger": trigger.id},
                )
                self.session.execute(
                    update(Task)
                    .where(
                        Task.trigger_id == trigger.id,
                        Task.status == "queued",
                        Task.priority < URGENT,
                    )
                    .values(priority=Task.priority + URGENT)
                )
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
            self._log(
                case,
                "sla_breach",
                now,
                None,
                outcome=ladder.escalate_to,
                note=f"SLA of step {trigger.step + 1} ended {trigger.deadline_at:%Y-%m-%d %H:%M}Z",
                details={"trigger": trigger.id, "team": team},
            )
            self._advance_status(case, "escalated", now, f"SLA breach on trigger {trigger.kind}")
            step = ladder.steps[trigger.step]
            restart = self._contactable(now, step, self._time_zone(trigger))
            trigger.deadline_at = restart + step.sla
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
            if step.deadline_at > now:
                step.warned_at = now
                self._log(case, "escalation", now, None, outcome="supervisor",
                          note=f"SLA of repossession step {step.step} ends "
                               f"{step.deadline_at:%m-%dT%H:%M}",
                          details=details,
                          key=f"repo:{step.repossession_id}:{step.step}:escalation")  # fmt: skip
                report.escalated += 1
                continue
            step.breached_at = now
            step.breach_team = step_team(assigned=step.assignee_id is not None, team=team)
            self._log(case, "sla_breach", now, None, outcome="supervisor",
                      note=f"SLA of repossession step {step.step} ended "
                           f"{step.deadline_at:%Y-%m-%d %H:%M}Z",
                      details={**details, "team": step.breach_team},
                      key=f"repo:{step.repossession_id}:{step.step}:sla_breach")  # fmt: skip
            self._advance_status(case, "escalated", now, f"SLA breach on repossession {step.step}")
            report.breached += 1

    def _teams(self, trigger_ids: set[int]) -> dict[int, str]:
        rows = self.session.execute(
            select(Task.trigger_id, User.team)
            .join(User, User.id == Task.assignee_id)
            .where(Task.trigger_id.in_(trigger_ids), Task.status == "queued")
        ).all()
        return {trigger_id: team or "unassigned" for trigger_id, team in rows}

    # ------------------------------------------------------------------ agents

    def queue(self, *, agent: str) -> list[Task]:
        """The agent's assigned tasks, most urgent first."""
        user = self._user(agent)
        return list(
            self.session.scalars(
                select(Task)
                .where(Task.assignee_id == user.id, Task.status == "queued")
                .order_by(Task.priority.desc(), Task.deadline_at, Task.id)
            )
        )

    def record_outcome(
        self,
        *,
        task_id: int,
        agent: str,
        at: datetime,
        outcome: Outcome | str,
        promised_on: date | None = None,
        amount: int | None = None,
        recording_ref: str | None = None,
        consented: bool = False,
        note: str = "",
    ) -> Action:
        """Record what an agent did on a queued task. Calls and visits pass the compliance
        guard first: a refused contact is recorded as a refused attempt (with its rule) and
        raises FollowupRefused, which ``transaction()`` commits with that record.
        A promise needs a date and an amount; a visit under ``cn`` a recording reference;
        a bad outcome records nothing."""
        try:
            result = Outcome(outcome)
        except ValueError:
            raise FollowupError(f"outcome: unknown outcome {outcome!r}") from None
        task = self.session.get(Task, task_id)
        if task is None or task.status != "queued":
            raise NotFoundError(f"task_id: no queued task {task_id}")
        user = self._user(agent)
        holder = self._check_may_record(task, user)
        channel = Channel(task.channel)
        _check_outcome(
            result,
            channel,
            promised_on,
            amount,
            recording_ref,
            self.dispatcher.guard.profile.visit_needs_recording,
            at,
        )
        trigger = self.session.get_one(Trigger, task.trigger_id)
        case = self.session.get_one(Case, task.case_id)
        view = self._loan_views({task.loan_id}, at)[task.loan_id]
        connected = result not in (Outcome.NO_ANSWER, Outcome.WRONG_NUMBER, Outcome.UNREACHABLE)
        if channel.contacts_borrower:
            request = replace(self._request(view, channel, at, case, trigger), consented=consented)
            decision = self.dispatcher.guard.check(request, self._history({view.id}, at)[view.id])
            if not decision.allowed or decision.permit is None:
                self.session.add(
                    ContactAttempt(
                        loan_id=view.id,
                        channel=channel.value,
                        at=at,
                        agency=self.agency,
                        allowed=False,
                        rule=decision.rule,
                        next_allowed_at=decision.next_allowed_at,
                    )
                )
                self.session.flush()
                raise FollowupRefused(f"at: contact refused ({decision.rule})")
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
            case.hold = "dispute"
        task.status, task.done_at = "done", at
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

    def command_tracker(
        self, *, loan_ref: str, command: TrackerCommand | str, approved_by: str | None,
        at: datetime,
    ) -> Action:
        """Log a remote immobilisation or fuel-cut request; allowed only on a loan past due
        with a supervisor's approval. A refusal is logged on the case timeline with its rule,
        then raised as FollowupRefused, which ``transaction()`` commits with that record."""
        try:
            command = TrackerCommand(command)
        except ValueError:
            known = ", ".join(c.value for c in TrackerCommand)
            raise FollowupError(f"command: unknown tracker command {command!r} ({known})") from None
        loan_id = self.session.scalar(select(Loan.id).where(Loan.ref == loan_ref))
        view = self._loan_views({loan_id}, at).get(loan_id) if loan_id is not None else None
        if loan_id is None or view is None:
            raise NotFoundError(f"loan: no loan {loan_ref!r}")
        approver = self._user(approved_by) if approved_by else None
        decision = authorize_tracker_command(
            dpd=view.dpd, approved_by=approved_by, approver_role=approver.role if approver else None
        )
        case = self._open_cases({loan_id}).get(loan_id)
        if case is None:
            raise FollowupError(f"loan: loan {view.ref} has no open case")
        action = self._log(
            case,
            Channel.TRACKER_COMMAND.value,
            at,
            approver.id if approver else None,
            outcome="sent" if decision.allowed else decision.rule,
            details={"command": command.value, "dpd": view.dpd},
        )
        self.session.flush()
        if not decision.allowed:
            raise FollowupRefused(f"command: refused ({decision.rule})")
        return action

    # ------------------------------------------------------------------ reading

    def _user(self, username: str) -> User:
        user = self._users.get(username) or self.session.scalar(
            select(User).where(User.username == username)
        )
        if user is None:
            raise NotFoundError(f"agent: no user {username!r}")
        self._users[username] = user
        return user

    def _loan_views(self, loan_ids: Iterable[int], now: datetime) -> dict[int, LoanView]:
        day = self._snapshot_day(now)
        views: dict[int, LoanView] = {}
        for chunk in chunks(list(loan_ids)):
            rows = self.session.execute(
                select(
                    Loan.id,
                    Loan.ref,
                    Loan.product,
                    Loan.status,
                    Borrower.time_zone,
                    Borrower.phone,
                    Borrower.email,
                    Borrower.address,
                    Borrower.province_code,
                    LoanSnapshot.dpd,
                    LoanSnapshot.bucket,
                    LoanSnapshot.unsecured,
                )
                .join(Borrower, Borrower.id == Loan.borrower_id)
                .outerjoin(
                    LoanSnapshot, and_(LoanSnapshot.loan_id == Loan.id, LoanSnapshot.as_of == day)
                )
                .where(Loan.id.in_(chunk))
            ).all()
            for r in rows:
                first_bucket = self.catalogue.get(r.product).buckets.names[0]
                views[r.id] = LoanView(
                    r.id,
                    r.ref,
                    r.product,
                    r.status,
                    r.time_zone,
                    r.phone,
                    r.email,
                    r.address,
                    r.province_code,
                    r.dpd or 0,
                    r.bucket or first_bucket,
                    r.unsecured or 0,
                )
        return views

    def _history(self, loan_ids: Iterable[int], now: datetime) -> dict[int, list[PastContact]]:
        """Contacts made in the last week, by anyone (lender and agencies)."""
        history: dict[int, list[PastContact]] = defaultdict(list)
        for chunk in chunks(list(loan_ids)):
            rows = self.session.scalars(
                select(ContactAttempt).where(
                    ContactAttempt.loan_id.in_(chunk),
                    ContactAttempt.allowed,
                    ContactAttempt.at > now - timedelta(days=HISTORY_DAYS + 1),
                    ContactAttempt.at <= now,
                )
            )
            for row in rows:
                history[row.loan_id].append(
                    PastContact(
                        row.at, Channel(row.channel), row.connected, row.conversation, row.consented
                    )
                )
        return history


def _latest_delinquency_per_loan(candidates: list[Candidate]) -> list[Candidate]:
    """Keep only the latest delinquency candidate of each loan (one delinquency ladder runs
    at a time: a deeper bucket supersedes the missed installment)."""
    latest: dict[int, Candidate] = {}
    for c in candidates:
        if c.kind in DELINQUENCY and (
            c.loan_id not in latest or c.anchor_at >= latest[c.loan_id].anchor_at
        ):
            latest[c.loan_id] = c
    kept = set(map(id, latest.values()))
    return [c for c in candidates if c.kind not in DELINQUENCY or id(c) in kept]


def owes_delinquency_follow_up(loan_id: Any, at: datetime | None = None) -> ColumnElement[bool]:
    """SQL over snapshots joined to their loans: the loan (``loan_id``) is past due in the
    snapshot, live, and has no delinquency trigger open (at ``at``, or now): the book owes a
    follow-up nobody is giving."""
    open_trigger = Trigger.resolved_at.is_(None)
    if at is not None:
        resolved_later = or_(Trigger.resolved_at.is_(None), Trigger.resolved_at > at)
        open_trigger = and_(Trigger.opened_at <= at, resolved_later)
    followed = exists().where(Trigger.loan_id == loan_id, open_trigger,
                              Trigger.kind.in_([k.value for k in DELINQUENCY]))  # fmt: skip
    return and_(LoanSnapshot.dpd > 0, Loan.status.in_(LIVE_LOAN_STATUSES), ~followed)


def _unassigned_tasks(session: Session) -> list[QueuedTask]:
    """The queued tasks nobody holds, as assignment sees them."""
    rows = session.execute(
        select(Task.id, Task.skill, Task.priority, Task.deadline_at, Borrower.province_code,
               Task.team)
        .join(Loan, Loan.id == Task.loan_id)
        .join(Borrower, Borrower.id == Loan.borrower_id)
        .where(Task.status == "queued", Task.assignee_id.is_(None))
    ).all()  # fmt: skip
    return [QueuedTask(t.id, t.skill, t.priority, t.deadline_at, t.province_code, team=t.team)
            for t in rows]  # fmt: skip


def unstaffed_tasks(session: Session) -> list[QueuedTask]:
    """Queued tasks nobody holds that no active agent can take (no one of their skill, team
    and region is present): they will breach unless someone is hired, back or re-skilled."""
    agents = session.scalars(select(User).where(User.role == "agent", User.active.is_(True)))
    return unstaffed(_unassigned_tasks(session), [_slot(agent, 0) for agent in agents])


def _adopted(candidate: Candidate, now: datetime) -> Candidate:
    """A backlog item raised at go-live: its SLA counts from ``now``, not from its past."""
    return replace(candidate, anchor_at=max(candidate.anchor_at, now),
                   details={**candidate.details, "found_by": "go-live"})  # fmt: skip


def _slot(agent: User, taken_today: int) -> AgentSlot:
    skills = agent.skills or {}
    return AgentSlot(
        id=agent.id,
        team=agent.team or "",
        skill=str(skills.get("mode", "phone")),
        regions=frozenset(skills.get("regions", ())),
        languages=frozenset(skills.get("languages", ())),
        remaining=max(agent.daily_capacity - taken_today, 0),
        load=taken_today,
    )


def _repeats(trigger: Trigger) -> bool:
    kind = TriggerKind(trigger.kind)
    return kind in DELINQUENCY or kind is TriggerKind.COLLATERAL_ALERT


def _check_outcome(
    outcome: Outcome,
    channel: Channel,
    promised_on: date | None,
    amount: int | None,
    recording_ref: str | None,
    visit_needs_recording: bool,
    at: datetime,
) -> None:
    if at.tzinfo is None:
        raise FollowupError("at: must carry a time zone")
    if outcome is Outcome.PROMISE_TO_PAY:
        if promised_on is None:
            raise FollowupError("promised_on: a promise to pay needs a date")
        if amount is None or amount <= 0:
            raise FollowupError("amount: a promise to pay needs a positive amount")
        if promised_on < at.date() - timedelta(days=1):
            raise FollowupError("promised_on: a promise cannot be dated in the past")
    if channel is Channel.VISIT and visit_needs_recording and not recording_ref:
        raise FollowupError("recording_ref: a field visit must carry a recording reference")
    if outcome is Outcome.DELIVERED:
        raise FollowupError("outcome: delivered is for automatic messages, not agent work")


def _text(trigger: Trigger, view: LoanView) -> str:
    """The message body: the loan reference and a call-back request, never an amount (the
    phone on file may not be the debtor's)."""
    if trigger.kind == TriggerKind.PRE_DUE:
        return f"Reminder: an installment of loan {view.ref} falls due soon."
    return f"Please contact us about loan {view.ref}."


def _attempt(attempt: Any) -> dict[str, Any]:
    return {"number": attempt.number, "ok": attempt.ok, "detail": attempt.detail}


def _provider_table(settings: FollowupSettings) -> dict[str, dict[str, Any]]:
    """The configured providers over the defaults; a configured channel replaces its default
    whole (options of one provider mean nothing to another)."""
    defaults: dict[str, dict[str, Any]] = {
        Channel.SMS.value: {"provider": "log"},
        Channel.VOICE.value: {"provider": "log"},
        Channel.LETTER.value: {"provider": "log"},
        Channel.EMAIL.value: {"provider": "smtp", "host": settings.smtp_host,
                              "port": settings.smtp_port, "sender": settings.email_sender},
    }  # fmt: skip
    return {**defaults, **settings.providers}


def _check_now(now: datetime) -> None:
    if now.tzinfo is None:
        raise FollowupError("now: must carry a time zone")


def _check_limit(limit: int, name: str) -> None:
    if limit < 1:
        raise FollowupError(f"{name}: must be at least 1, got {limit}")


def _step_key(trigger: Trigger) -> str:
    """The idempotency key of an automatic step: a step is sent once, whoever runs it."""
    return f"step:{trigger.id}:{trigger.step}:{trigger.next_due_at:%Y%m%dT%H%M}"
