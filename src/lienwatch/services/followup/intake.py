"""Raising and resolving triggers: the go-live backlog, the coverage check, the ``events``
outbox, open alerts, routine schedules, snapshots, reversed payments and promises; resolving
triggers whose cause went away and closing the cases left without one. The rules of which
candidate becomes which trigger are pure, in ``followup/triggers.py``."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, Row, and_, exists, func, or_, select, update

from lienwatch.followup.model import CaseStatus, PromiseStatus, TaskStatus, TriggerKind
from lienwatch.followup.triggers import (
    CATCH_UP_DAYS,
    DELINQUENCY,
    ROUTINE_CHECKS,
    Candidate,
    adopted,
    bucket_move,
    check_lead,
    current_checks,
    past_due_kind,
)
from lienwatch.services.followup.book_scan import (
    BookScan,
    begin_scan,
    last_scan,
    record_scan,
    scan_key,
)
from lienwatch.services.followup.model import DueStep, ServiceState, TickReport
from lienwatch.store.db import among, chunks
from lienwatch.store.followup import (
    FINAL_LOAN_STATUSES,
    LIVE_LOAN_STATUSES,
    OPEN_ALERT_STATUSES,
    uncovered_loans,
)
from lienwatch.store.tables import (
    Alert,
    Case,
    Event,
    Loan,
    LoanSnapshot,
    Payment,
    Promise,
    Task,
    Trigger,
)

log = logging.getLogger(__name__)


class Intake(ServiceState):
    """The follow-up service's intake (a part of :class:`FollowupService`)."""

    def adopt_backlog(self, *, at: datetime) -> TickReport:
        """Go-live on an existing book (the first tick does it; ``lienwatch followup adopt``
        on demand): raise a trigger for every loan past due in the latest nightly snapshot,
        every open collateral alert, every bucket change that predates the engine and every
        routine check past its last call, anchored at ``at`` (their original SLAs ended
        before anyone was watching); later ticks keep every anchor as it is. Safe to
        repeat: what was raised is not raised again, so a second book imported later is
        adopted the same way."""
        report = TickReport()
        _, overdue = self._routine_checks(at, self._live_loans(self._today(at)))
        backlog = [*self._from_events(at), *self._from_alerts(at), *overdue]
        views = self._loan_views({c.loan_id for c in backlog}, at)
        old = [c for c in backlog
               if c.kind not in DELINQUENCY or views[c.loan_id].dpd > 0]  # cured before go-live
        raised = self._raise_many([adopted(c, at) for c in old], at, report)
        self._consume_pending_events(at)  # the book's state is adopted whole: its news is old
        owed = self._uncovered_delinquency(at)
        raised += self._raise_many([adopted(c, at) for c in owed], at, report)
        report.adopted += len(raised)
        report.cases_closed += self._close_finished_cases(at)
        return report

    def _take_in(self, now: datetime, report: TickReport) -> None:
        """The tick's intake: raise the new triggers (the coverage check's too), decide the
        promises, resolve the triggers whose cause went away. What reads the whole book runs
        once per business day and snapshot (``book_scan.py``), then only on what changed."""
        key = scan_key(self._today(now), self._snapshot_day(now))
        since = last_scan(self.session, key)
        scan = begin_scan(self.session, key) if since is None else None
        after = None if since is None else since.loan_id
        self._raise_many(self._candidates(now, after=after), now, report)
        uncovered = self._uncovered_delinquency(now)  # every tick: the invariant's safety net
        report.uncovered += len(self._raise_many(uncovered, now, report))
        if report.uncovered:
            log.warning("coverage check: %d past-due loans had no follow-up; raised at %s",
                        report.uncovered, now.isoformat())  # fmt: skip
        self._decide_promises(now, report)
        self._resolve(now, report, since=since)
        if scan is not None:
            record_scan(self.session, scan, at=now)

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

    def seen_before(self) -> bool:
        """Whether the engine has worked this book: a trigger raised or an event consumed."""
        return bool(
            self.session.scalar(select(exists().where(Trigger.id.is_not(None))))
            or self.session.scalar(select(exists().where(Event.consumed_at.is_not(None))))
        )

    def _uncovered_delinquency(self, now: datetime) -> list[Candidate]:
        """The coverage check: every loan past due in the latest nightly snapshot must have an
        open delinquency trigger; those without one (a book imported after go-live, a trigger
        lost) are returned as triggers to raise at ``now``, found by the coverage check. It
        reads the past-due loans of the whole book at every tick, not only what changed since
        the day's book scan: a trigger lost behind the engine's back is found at the next tick."""
        day = self._snapshot_day(now)
        if day is None:
            return []
        uncovered = uncovered_loans(self.session, day)  # ids, from two indexes only
        rows = [row for ids in among(self.session, LoanSnapshot.loan_id, uncovered)
                for row in self.session.execute(
            select(LoanSnapshot.loan_id, LoanSnapshot.bucket, LoanSnapshot.dpd, Loan.product)
            .join(Loan, Loan.id == LoanSnapshot.loan_id)
            .where(LoanSnapshot.as_of == day, ids,  # past due, not followed: uncovered_loans
                   Loan.status.in_(LIVE_LOAN_STATUSES))
            .order_by(LoanSnapshot.loan_id)
        )]  # fmt: skip
        found = []
        for loan_id, bucket, dpd, product in rows:
            kind = past_due_kind(self.catalogue.get(product).buckets.names, bucket)
            found.append(
                Candidate(loan_id, kind, f"book:{loan_id}:{day.isoformat()}", now,
                          details={"to": bucket, "dpd": dpd, "found_by": "coverage check"})
            )  # fmt: skip
        return found

    def _candidates(self, now: datetime, *, after: int | None = None) -> list[Candidate]:
        """The triggers to raise at ``now``; the routine checks and the snapshots' triggers
        only of the loans with an id greater than ``after`` when it is given (the day's book
        scan covered the others: see ``book_scan.py``)."""
        return [
            *self._from_events(now),
            *self._from_alerts(now),
            *self._routine(now, after=after),
            *self._from_snapshots(now, after=after),
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
            kind = bucket_move(names, event.payload.get("from"), event.payload["to"])
            if kind is None or any((t.details or {}).get("to") == event.payload["to"]
                                   for t in followed.get(event.loan_id, ())):  # fmt: skip
                continue
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

    def raise_for_alerts(self, keys: Sequence[str], *, at: datetime) -> list[Trigger]:
        """Raise now the ``collateral_alert`` triggers the next tick would raise for the
        stored alerts with these monitor ``keys`` (the live monitor's tracker alarms: a
        follow-up within seconds, not at the next tick); the triggers raised. Alerts closed,
        already followed up or not on a loan are skipped, and so is everything before the
        engine's first tick (that tick adopts the book's backlog whole)."""
        if not keys or not self.seen_before():
            return []
        raised = []
        for chunk in chunks(list(keys)):
            raised += self._raise_many(self._from_alerts(at, keys=chunk), at, TickReport())
        self._close_finished_cases(at)
        return raised

    def _from_alerts(self, now: datetime, *, keys: Sequence[str] | None = None) -> list[Candidate]:
        query = select(Alert).where(
            Alert.loan_id.is_not(None),
            Alert.status.in_(OPEN_ALERT_STATUSES),
            ~exists().where(Trigger.alert_id == Alert.id),
            func.coalesce(Alert.raised_at, Alert.started_at) <= now,
        )
        rows = self.session.scalars(query if keys is None else query.where(Alert.key.in_(keys)))
        return [
            Candidate(
                alert.loan_id,
                # an abnormal payment is an alert with a ladder of its own
                TriggerKind.PAYMENT_ANOMALY
                if alert.type == TriggerKind.PAYMENT_ANOMALY
                else TriggerKind.COLLATERAL_ALERT,
                f"alert:{alert.id}",
                alert.raised_at or alert.started_at,
                alert_type=alert.type,
                alert_id=alert.id,
                details={"alert_type": alert.type, "severity": alert.severity},
            )
            for alert in rows
            if alert.loan_id is not None
        ]

    def _routine(self, now: datetime, *, after: int | None = None) -> list[Candidate]:
        """Welcome calls after disbursement and the periodic collateral checks: each check on
        the day it falls due, or on its last call when nobody raised it then (a go-live in
        the middle of its period; see ``followup.triggers``)."""
        today = self._today(now)
        welcome_after = self.strategy.routine.welcome_after
        loans, found = self._live_loans(today, after=after), []
        for loan_id, disbursed in loans:
            if 0 <= (today - welcome_after - disbursed).days < CATCH_UP_DAYS:
                anchor = max(self._midnight(disbursed + welcome_after), now)
                found.append(
                    Candidate(loan_id, TriggerKind.WELCOME_CALL, f"welcome:{loan_id}", anchor)
                )
        due, overdue = self._routine_checks(now, loans)
        return [*found, *due, *overdue]

    def _routine_checks(
        self, now: datetime, loans: list[tuple[int, date]]
    ) -> tuple[list[Candidate], list[Candidate]]:
        """The routine checks of ``loans`` to raise at ``now``: those that fall due (anchored
        on their first day) and those on their last call, not raised when they fell due
        (anchored at ``now``; a trigger raised before is not raised again)."""
        today = self._today(now)
        leads = {kind: check_lead(self.strategy, kind) for kind in ROUTINE_CHECKS}
        due, overdue = [], []
        for loan_id, disbursed in loans:
            for check in current_checks(loan_id, disbursed, today, self.strategy):
                if check.just_due(today):
                    anchor = max(self._midnight(check.starts_on), now)
                    due.append(Candidate(loan_id, check.kind, check.source_key, anchor))
                elif check.last_call(today, leads[check.kind]):
                    overdue.append(Candidate(
                        loan_id, check.kind, check.source_key, now,
                        details={"found_by": "last call", "owed_before": check.ends_on.isoformat()},
                    ))  # fmt: skip
        return due, overdue

    def _live_loans(self, today: date, *, after: int | None = None) -> list[tuple[int, date]]:
        """(loan id, disbursement day) of the loans that owe routine follow-up (those with an
        id greater than ``after`` when given)."""
        return list(self.session.execute(
            select(Loan.id, Loan.disbursed_on)
            .where(Loan.status.in_(LIVE_LOAN_STATUSES), Loan.disbursed_on <= today,
                   *_newer(Loan.id, after))
        ).all())  # fmt: skip

    def _from_snapshots(self, now: datetime, *, after: int | None = None) -> list[Candidate]:
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
                *_newer(LoanSnapshot.loan_id, after),
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
        kept = self._kept_before_reversal([r[0] for r in rows])
        return [
            Candidate(
                loan_id,
                TriggerKind.PAYMENT_ANOMALY,
                f"reversal:{payment_id}",
                at,
                details={"payment_id": payment_id, "reason": reason,
                         **({"rule": "REVERSAL_AFTER_KEPT_PROMISE",
                             "promise_id": kept[payment_id]} if payment_id in kept else {})},
            )
            for payment_id, loan_id, at, reason in rows
        ]

    def _kept_before_reversal(self, payment_ids: list[int]) -> dict[int, int]:
        """The reversed payments that counted towards a promise marked kept before the
        reversal (the abnormal-payment rule ``REVERSAL_AFTER_KEPT_PROMISE``): payment -> the
        promise."""
        found: dict[int, int] = {}
        for ids in among(self.session, Payment.id, payment_ids):
            for payment_id, promise_id in self.session.execute(
                select(Payment.id, Promise.id)
                .join(Promise, Promise.loan_id == Payment.loan_id)
                .where(ids, Promise.status == PromiseStatus.KEPT,
                       Payment.paid_on.between(Promise.made_on, Promise.promised_on),
                       Promise.decided_at <= Payment.reversed_at)
            ):  # fmt: skip
                found.setdefault(payment_id, promise_id)
        return found

    def _decide_promises(self, now: datetime, report: TickReport) -> None:
        """A promise whose date has passed is kept when payments from the day it was made to
        its date cover its amount; a broken one is a new trigger."""
        today = self._today(now)
        promises = self.session.scalars(
            select(Promise).where(Promise.status == PromiseStatus.OPEN, Promise.promised_on < today)
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
            promise.status = PromiseStatus.KEPT if paid >= promise.amount else PromiseStatus.BROKEN
            promise.decided_at = now
            if promise.status == PromiseStatus.BROKEN:
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

    def _resolve(self, now: datetime, report: TickReport, *, since: BookScan | None = None) -> None:
        """Resolve triggers whose cause is gone; close cases left without an open trigger.

        Every open trigger is examined, or with ``since`` (the day's book scan, which examined
        them all) only what may have changed since: triggers raised since, triggers of
        alerts, triggers of loans booked since or given a final status by hand.

        The triggers and their cases are locked as a step batch locks them: the tick waits for
        a batch working on one of those cases and a batch skips the cases the tick holds, so
        whichever resolves a case's last open trigger sees the other's resolutions when it
        decides whether to close the case."""
        day = self._snapshot_day(now)
        snapshot = and_(LoanSnapshot.loan_id == Trigger.loan_id, LoanSnapshot.as_of == day)
        query = (
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
        )
        seen: set[int] = set()
        for part in [query] if since is None else since.changed(query):
            rows = [row for row in self.session.execute(part).all() if row[0].id not in seen]
            seen.update(row[0].id for row in rows)
            self._resolve_rows(rows, now, report)

    def _resolve_rows(self, rows: Sequence[Row], now: datetime, report: TickReport) -> None:
        for trigger, loan_status, alert_status in rows:
            if loan_status in FINAL_LOAN_STATUSES:
                reason = f"loan {loan_status}"
            elif trigger.alert_id is not None and alert_status not in OPEN_ALERT_STATUSES:
                reason = f"alert {alert_status}"
            else:
                reason = "loan current"
            self._resolve_trigger(trigger, now, reason)
            report.resolved += 1

    def _resolve_trigger(self, trigger: Trigger | DueStep, now: datetime, reason: str) -> None:
        trigger.resolved_at, trigger.resolution = now, reason
        self._cancel.add(trigger.id)
        self._touched.add(trigger.case_id)

    def _cancel_tasks(self, now: datetime) -> None:
        """Take the queued tasks of triggers resolved since the last call off the queues."""
        ids, self._cancel = sorted(self._cancel), set()
        for among_ids in among(self.session, Task.trigger_id, ids):
            self.session.execute(
                update(Task).where(among_ids, Task.status == TaskStatus.QUEUED)
                .values(status=TaskStatus.CANCELLED, done_at=now)
            )  # fmt: skip

    def _close_finished_cases(self, now: datetime) -> int:
        """Close the cases whose last open trigger was resolved, with the reasons; also
        takes the resolved triggers' tasks off the queues."""
        self._cancel_tasks(now)
        self.session.flush()
        touched, self._touched = sorted(self._touched), set()
        if not touched:  # most calls (an agent's outcome that resolved nothing)
            return 0
        open_trigger = exists().where(Trigger.case_id == Case.id, Trigger.resolved_at.is_(None))
        cases = [
            case
            for ids in among(self.session, Case.id, touched)
            for case in self.session.scalars(
                select(Case)
                .where(ids, Case.status != CaseStatus.CLOSED, ~open_trigger)
                .execution_options(populate_existing=True)
            )
        ]
        reasons: dict[int, set[str]] = defaultdict(set)
        for ids in among(self.session, Trigger.case_id, [case.id for case in cases]):
            for case_id, resolution in self.session.execute(
                select(Trigger.case_id, Trigger.resolution).where(ids)
            ):
                reasons[case_id].add(resolution or "")
        self._read_refs(case.loan_id for case in cases)
        for case in cases:
            why = "; ".join(sorted(r for r in reasons[case.id] if r))
            self._move(case, CaseStatus.CLOSED, now, None, why)
        return len(cases)


def _newer(key: ColumnElement[int], after: int | None) -> list[ColumnElement[bool]]:
    """``key > after`` as a condition to add, none when ``after`` is None."""
    return [] if after is None else [key > after]
