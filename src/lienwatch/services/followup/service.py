"""The follow-up engine's use cases: :class:`FollowupService`, its verbs keyword-only and
never committing (the caller owns the transaction).

One :meth:`FollowupService.tick` ingests new triggers (``intake.py``), resolves triggers whose
cause went away and closes cases, executes a batch of the due automatic steps through the
compliance guard and queues the due agent steps (``steps.py``), assigns the queue and runs the
watchdog over the triggers' steps and the repossession steps alike (``watch.py``);
:meth:`FollowupService.run_due_steps` executes further batches of due steps without the tick's
lock, so several workers share a backlog (each batch in its own transaction). The verbs of
people are in ``agents.py``. The rules are pure, in ``lienwatch.followup``.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from lienwatch.adapters.providers import build_providers
from lienwatch.config import FollowupSettings
from lienwatch.errors import NotFoundError
from lienwatch.followup.channels import Dispatcher, Provider
from lienwatch.followup.compliance import ComplianceGuard, PastContact
from lienwatch.followup.model import (
    CaseStatus,
    Channel,
    FollowupError,
    TriggerKind,
    check_transition,
)
from lienwatch.followup.strategy import Segment, Strategy, configured_strategy
from lienwatch.followup.triggers import DELINQUENCY, Candidate, latest_delinquency_per_loan
from lienwatch.services.behaviour import opening_scores
from lienwatch.services.followup.agents import Agents
from lienwatch.services.followup.commands import TrackerRequests
from lienwatch.services.followup.conduct import Conduct
from lienwatch.services.followup.desk import Approvals, Desk
from lienwatch.services.followup.intake import Intake
from lienwatch.services.followup.model import LoanView, TickReport
from lienwatch.services.followup.steps import Steps
from lienwatch.services.followup.watch import Watch
from lienwatch.services.strategies import strategy_in_force
from lienwatch.services.timeline import log_action
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import among
from lienwatch.store.followup import HISTORY_DAYS
from lienwatch.store.locks import SCHEDULER_LOCK, try_advisory_lock
from lienwatch.store.servicing import last_run_day
from lienwatch.store.tables import (
    Action,
    Borrower,
    Case,
    ContactAttempt,
    Loan,
    LoanSnapshot,
    Trigger,
    User,
)

log = logging.getLogger(__name__)


class FollowupService(Intake, Steps, Watch, Agents, Conduct, Desk, Approvals, TrackerRequests):
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
        self._snapshot_days: dict[date, date | None] = {}
        self._users: dict[str, User] = {}
        self._refs: dict[int, str] = {}  # loan id -> reference
        self._zones: dict[int, str] = {}  # loan id -> the loan's time zone

    @classmethod
    def from_settings(
        cls,
        session: Session,
        settings: FollowupSettings,
        *,
        time_zone: str,
        catalogue: ProductCatalogue | None = None,
        providers: dict[Channel, Provider] | None = None,
        published: bool = True,
    ) -> FollowupService:
        """The service as configured: the strategy (shipped name or file, or with
        ``published`` its newest version published since: one query), its guard, and
        providers: ``providers`` when given, else ``settings.providers`` over the defaults
        (SMS, automated voice and letters to the log, e-mail to the ``smtp_*`` relay);
        ``time_zone`` is the business day's (``Settings.time_zone``). Without ``published``
        it touches no table (a check of the configuration at start)."""
        strategy = configured_strategy(settings.strategy)
        if published:
            strategy = strategy_in_force(session, strategy)
        if providers is None:
            providers = build_providers(_provider_table(settings))
        dispatcher = Dispatcher(ComplianceGuard(strategy.profile), providers)
        return cls(
            session, strategy=strategy, dispatcher=dispatcher, catalogue=catalogue,
            agency=settings.agency, watchdog_lead=timedelta(hours=settings.watchdog_lead_h),
            business_zone=time_zone,
        )  # fmt: skip

    def raise_trigger(
        self,
        *,
        loan_id: int,
        kind: TriggerKind,
        source_key: str,
        anchor_at: datetime,
        at: datetime,
        details: dict[str, Any] | None = None,
    ) -> Trigger | None:
        """Open or join the loan's case with a trigger (e.g. the payment-anomaly hook); None
        when ``source_key`` was raised before."""
        candidate = Candidate(
            loan_id, TriggerKind(kind), source_key, anchor_at, details=details or {}
        )
        raised = self._raise_many([candidate], at, TickReport())
        self._close_finished_cases(at)
        return raised[0] if raised else None

    def _raise_many(
        self, candidates: Sequence[Candidate], now: datetime, report: TickReport
    ) -> list[Trigger]:
        keys = [c.source_key for c in candidates]
        known = set()
        for ids in among(self.session, Trigger.source_key, keys):
            known.update(self.session.scalars(select(Trigger.source_key).where(ids)))
        fresh = latest_delinquency_per_loan(
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
        for ids in among(self.session, Trigger.loan_id, loan_ids):
            for trigger in self.session.scalars(
                select(Trigger).where(ids, Trigger.resolved_at.is_(None),
                                      Trigger.kind.in_([k.value for k in DELINQUENCY]))
            ):  # fmt: skip
                found[trigger.loan_id].append(trigger)
        return found

    def _open_new_cases(self, views: list[LoanView], now: datetime) -> dict[int, Case]:
        """One new case per loan, its arm drawn by stratum (the bucket) in arrival order."""
        if not views:
            return {}
        strata = self._stratum_counts()
        scores = opening_scores(self.session, [v.id for v in views], day=now.astimezone(
            self.zone).date()) if self.strategy.scores_cases else {}  # fmt: skip
        cases = {}
        for view in views:
            arm = self.strategy.arm_for(view.bucket, strata[view.bucket])
            strata[view.bucket] += 1
            cases[view.id] = Case(
                loan_id=view.id, status=CaseStatus.NEW, priority=0, opened_at=now, status_at=now,
                strategy=self.strategy.label, arm=arm, stratum=view.bucket,
                roll_score=scores.get(view.id),
            )  # fmt: skip
        self.session.add_all(cases.values())
        self.session.flush()
        for case in cases.values():
            self._log(case, "status", now, None, note="case opened",
                      details={"from": None, "to": CaseStatus.NEW, "arm": case.arm})  # fmt: skip
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
        for ids in among(self.session, Case.loan_id, loan_ids):
            for case in self.session.scalars(
                select(Case)
                .where(ids, Case.status != CaseStatus.CLOSED)
                .order_by(Case.id)
                .with_for_update(read=True, key_share=True)
                .execution_options(populate_existing=True)
            ):
                cases[case.loan_id] = case
        return cases

    def change_status(
        self, *, case_id: int, status: CaseStatus | str, by: str | None, why: str, at: datetime
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

    def _move(
        self, case: Case, status: CaseStatus | str, at: datetime, by: int | None, why: str
    ) -> None:
        target = check_transition(case.status, status)
        previous = case.status
        case.status, case.status_at = target.value, at
        if target is CaseStatus.CLOSED:
            case.closed_at, case.close_reason = at, why
        self._log(case, "status", at, by, note=why, details={"from": previous, "to": target.value})

    def _advance_status(self, case: Case, status: CaseStatus, at: datetime, why: str) -> None:
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
        """An action on the case's timeline, with its ledger entry."""
        return log_action(self.session, case, loan_ref=self.loan_ref(case.loan_id), kind=kind,
                          at=at, by=self.session.get(User, by) if by else None,
                          outcome=outcome, note=note, details=details, key=key)  # fmt: skip

    def loan_ref(self, loan_id: int) -> str:
        """A loan's reference, as people know it (cached: the views of the loans a pass works
        on fill it)."""
        if loan_id not in self._refs:
            self._refs[loan_id] = self.session.scalar(select(Loan.ref).where(Loan.id == loan_id))
        return self._refs[loan_id]

    def _read_refs(self, loan_ids: Iterable[int]) -> None:
        """Cache the references of ``loan_ids`` for :meth:`loan_ref` in a few queries: a pass
        that logs on many cases would read them one at a time, each query first flushing what
        the pass changed so far."""
        for ids in among(self.session, Loan.id, set(loan_ids) - self._refs.keys()):
            self._refs.update(self.session.execute(select(Loan.id, Loan.ref).where(ids)).all())

    def tick(self, *, at: datetime, step_limit: int | None = None) -> TickReport:
        """One scheduler pass at the time ``at``: ingest, resolve, execute and queue one batch
        of due steps (at most ``step_limit``, all when None), assign, watch.

        Steps left due beyond the batch wait for :meth:`run_due_steps` (the tick job drains
        them after this transaction) or the next tick. The tasks and deadlines of steps run in
        later batches are assigned and watched by the next tick."""
        _check_aware(at)
        if step_limit is not None:
            _check_limit(step_limit, "step_limit")
        report = TickReport()
        if not self._scheduler_lock():
            report.skipped = 1
            return report
        if not self.seen_before():
            report.add(self.adopt_backlog(at=at))
        if report.adopted:
            log.warning("go-live: %d follow-ups adopted from the book's backlog (past-due loans, "
                        "open alerts, routine checks on their last call), their SLAs counted "
                        "from %s", report.adopted, at.isoformat())  # fmt: skip
        self._take_in(at, report)
        self._run_due_steps(at, report, step_limit)
        self._assign(at, report)
        self._watch(at, report)
        self._watch_repossessions(at, report)
        report.cases_closed += self._close_finished_cases(at)
        return report

    def run_due_steps(self, *, at: datetime, limit: int) -> TickReport:
        """Execute the due automatic steps and queue the due agent steps, at most ``limit``,
        oldest due first, then close the cases left without an open trigger.

        Needs no scheduler lock: any number of workers may call it at the same time, each
        batch in its own transaction (the caller's), and each step is claimed by one of them
        (see :meth:`_run_due_steps`). ``steps`` in the report counts the claimed steps: fewer
        than ``limit`` means no more were due and free."""
        _check_aware(at)
        _check_limit(limit, "limit")
        report = TickReport()
        self._run_due_steps(at, report, limit)
        report.cases_closed += self._close_finished_cases(at)
        return report

    def _scheduler_lock(self) -> bool:
        """One tick at a time per database: on PostgreSQL a transaction-level advisory lock
        that several workers try (those that do not get it skip this tick, they never wait);
        SQLite has a single writer anyway. Due steps are claimed with row locks instead (see
        :meth:`_run_due_steps`), so batches of them run in parallel with a tick."""
        return try_advisory_lock(self.session, SCHEDULER_LOCK)

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

    def _user(self, username: str) -> User:
        user = self._users.get(username) or self.session.scalar(
            select(User).where(User.username == username)
        )
        if user is None:
            raise NotFoundError(f"agent: no user {username!r}")
        self._users[username] = user
        return user

    def _loan_views(self, loan_ids: Iterable[int], now: datetime) -> dict[int, LoanView]:
        """The loans' views as of the snapshot day of ``now``; also fills the caches of their
        references and time zones (:meth:`loan_ref`, ``Steps._time_zone``)."""
        day = self._snapshot_day(now)
        views: dict[int, LoanView] = {}
        for ids in among(self.session, Loan.id, loan_ids):
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
                    Loan.time_zone.label("loan_zone"),
                )
                .join(Borrower, Borrower.id == Loan.borrower_id)
                .outerjoin(
                    LoanSnapshot, and_(LoanSnapshot.loan_id == Loan.id, LoanSnapshot.as_of == day)
                )
                .where(ids)
            ).all()
            for r in rows:
                self._refs[r.id], self._zones[r.id] = r.ref, r.loan_zone
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
                    r.bucket or self.catalogue.get(r.product).buckets.names[0],
                    r.unsecured or 0,
                )
        return views

    def _history(self, loan_ids: Iterable[int], now: datetime, *,
                 since: datetime | None = None) -> dict[int, list[PastContact]]:  # fmt: skip
        """Contacts made in the week up to ``now`` (from the week before ``since`` when
        given), by anyone (lender and agencies)."""
        history: dict[int, list[PastContact]] = defaultdict(list)
        earliest = min(since or now, now) - timedelta(days=HISTORY_DAYS + 1)
        for ids in among(self.session, ContactAttempt.loan_id, loan_ids):
            rows = self.session.scalars(
                select(ContactAttempt).where(
                    ids,
                    ContactAttempt.allowed,
                    ContactAttempt.at > earliest,
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


def _check_aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise FollowupError("at: must carry a time zone")


def _check_limit(limit: int, name: str) -> None:
    if limit < 1:
        raise FollowupError(f"{name}: must be at least 1, got {limit}")
