"""The scheduler's jobs: the follow-up tick, the nightly servicing run and the ledger's seal.

Each job is a blocking callable for :class:`lienwatch.scheduling.Job` that opens its own
transactions, so ``lienwatch serve``, ``lienwatch worker`` and ``lienwatch followup run`` run
the same code. Both are safe with several workers on one PostgreSQL database: the tick and the
nightly run each hold an advisory lock (the others skip), due steps are claimed in batches with
``SKIP LOCKED`` by every worker at once, and every outbound message carries an idempotency key.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from lienwatch import clock
from lienwatch.adapters.ledger_key import load_or_create_key
from lienwatch.config import Settings
from lienwatch.domain.calendar import ended_business_day
from lienwatch.scheduling import Backoff, DailyAt, Every, Job
from lienwatch.services.behaviour import refit_if_due
from lienwatch.services.followup import FollowupService
from lienwatch.services.ledger import LedgerService
from lienwatch.services.payment_anomalies import scan_payments
from lienwatch.services.positions import prepare_partitions
from lienwatch.services.servicing import last_run_day, run_next_missing_day
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import transaction

FOLLOWUP_TICK = "followup_tick"
NIGHTLY = "nightly"
LEDGER_SEAL = "ledger_seal"
REPORT = "report"
CAPACITY_PLAN = "capacity_plan"
#: The longest wait between two retries of a failed nightly run.
NIGHTLY_RETRY_MAX_S = 1_800.0

Summary = dict[str, Any]

log = logging.getLogger(__name__)


def followup_tick(factory: sessionmaker[Session], settings: Settings) -> Callable[[], Summary]:
    """The follow-up job: :func:`tick_and_drain` at the current time.

    The strategy, providers and products are checked once here, so a bad configuration
    stops the command at start with one line instead of failing every tick."""
    catalogue = ProductCatalogue.from_tables(settings.products)
    with factory() as session:  # builds the strategy and providers; touches no table
        FollowupService.from_settings(
            session, settings.followup, time_zone=settings.time_zone, catalogue=catalogue,
            published=False,
        )  # fmt: skip

    def tick() -> Summary:
        return tick_and_drain(factory, settings, catalogue=catalogue)

    return tick


def alarm_followups(
    factory: sessionmaker[Session], settings: Settings
) -> Callable[[Sequence[str]], int]:
    """What the live monitor calls when it stored tracker alarms: their follow-up triggers
    raised at once in a transaction of their own (``FollowupService.raise_for_alerts``);
    returns how many. Another process raising one of the same triggers at the same moment
    (a tick on PostgreSQL) wins: the unique source key refuses the batch, which is then raised
    alert by alert, each in its own transaction, so only the trigger raised elsewhere is left
    out (not the others of the batch, which no tick would raise before the next)."""
    catalogue = ProductCatalogue.from_tables(settings.products)

    def raise_in_one(keys: Sequence[str]) -> int:
        with transaction(factory) as session:
            service = FollowupService.from_settings(
                session, settings.followup, time_zone=settings.time_zone, catalogue=catalogue
            )
            return len(service.raise_for_alerts(keys, at=clock.now()))

    def raise_now(keys: Sequence[str]) -> int:
        try:
            return raise_in_one(keys)
        except IntegrityError:
            log.info("alarm follow-ups: %d alerts raced another writer; one by one", len(keys))
        raised = 0
        for key in keys:
            with contextlib.suppress(IntegrityError):  # raised by the other writer
                raised += raise_in_one([key])
        return raised

    return raise_now


def tick_and_drain(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    catalogue: ProductCatalogue,
    at: datetime | None = None,
) -> Summary:
    """One follow-up tick with its first batch of due steps, then the due steps left, in
    batches of ``[followup] step_batch``, each in its own transaction, until a batch claims
    none; returns the tick report counting every batch, with ``batches`` (those that claimed
    steps).

    A batch that comes back short is not the end: steps another worker held (skipped, not
    waited for) or raised by a tick that committed meanwhile may be due, so two workers that
    both came back short at once would otherwise both stop and leave them to the next run.

    A worker whose tick was skipped (another worker holds the scheduler lock) drains as well,
    so several workers share a backlog of steps; a batch never waits for another batch or for a
    tick. A failed batch (a deadlock PostgreSQL broke, a lost connection) fails the run and
    undoes only itself: its steps are due again at the next run and re-sent with the same
    idempotency keys. ``at`` fixes the time (``lienwatch followup tick --at``); None reads the
    clock at each transaction."""
    limit = settings.followup.step_batch

    def service(session: Session) -> FollowupService:
        return FollowupService.from_settings(
            session, settings.followup, time_zone=settings.time_zone, catalogue=catalogue
        )

    with transaction(factory) as session:
        report = service(session).tick(at=at or clock.now(), step_limit=limit)
    batches = 1 if report.steps else 0
    more = report.skipped == 1 or report.steps > 0
    while more:
        with transaction(factory) as session:
            batch = service(session).run_due_steps(at=at or clock.now(), limit=limit)
        report.add(batch)
        batches += 1 if batch.steps else 0
        more = batch.steps > 0
    return {**report.as_dict(), "batches": batches}


def nightly_run(factory: sessionmaker[Session], settings: Settings) -> Callable[[], Summary]:
    """The nightly servicing run for every missing business day up to yesterday (in
    ``time_zone``), oldest first, one transaction per day; returns the days it ran. Then the
    payments of those days go through the abnormal-payment rules (one transaction), and the
    ``payment_anomaly`` alerts raised get their follow-up triggers at once. The first run
    to reach a new month refits the behaviour score through its last run day and stores it
    unpublished for an analyst to publish (``behaviour_refit``: the fit, or why none; None
    when this month's is done). First, on
    PostgreSQL, the positions' month partitions of this month and the next two are made when
    missing (``store/partitions.py``), so fixes never wait for one.

    At most ``[scheduler] nightly_catch_up_days`` days are caught up after downtime. With
    several workers on PostgreSQL each day is run by one of them (``busy``: another worker
    held the run when this one looked)."""
    catalogue = ProductCatalogue.from_tables(settings.products)
    follow_up = alarm_followups(factory, settings)

    def run() -> Summary:
        with transaction(factory) as session:  # PostgreSQL's month partitions, made ahead
            partitions = prepare_partitions(session, at=clock.now())
        through = ended_business_day(clock.now(), settings.time_zone)
        days: list[str] = []
        bucket_changes = status_changes = 0
        last: date | None = None
        while True:
            with transaction(factory) as session:
                step = run_next_missing_day(
                    session, catalogue, through=through, after=last,
                    max_days=settings.scheduler.nightly_catch_up_days,
                    workers=settings.servicing.workers,
                )  # fmt: skip
            if step.day is None or step.counts is None:
                break
            last = step.day
            days.append(step.day.isoformat())
            bucket_changes += step.counts.bucket_changes
            status_changes += step.counts.status_changes
        anomalies = followed = 0
        if last is not None:  # the days' payments through the abnormal-payment rules
            with transaction(factory) as session:
                alerts = scan_payments(session, since=date.fromisoformat(days[0]), through=last,
                                       at=clock.now())  # fmt: skip
                keys = [alert.key for alert in alerts if alert.key is not None]
            anomalies, followed = len(keys), follow_up(keys)
        with transaction(factory) as session:  # the behaviour score's monthly refit
            ran = last_run_day(session, through=through)
            refit = refit_if_due(session, through=ran, at=clock.now()) if ran else None
        return {
            "through": through.isoformat(), "days": days, "bucket_changes": bucket_changes,
            "status_changes": status_changes, "payment_anomalies": anomalies,
            "payment_anomalies_followed": followed, "busy": step.busy,
            "position_partitions_made": partitions, "behaviour_refit": refit,
        }  # fmt: skip

    return run


def ledger_seal(factory: sessionmaker[Session], settings: Settings) -> Callable[[], Summary]:
    """Seal the ledger's pending entries under a new signed tree head (one worker at a time;
    the signing key is read, or made, once here)."""
    key = load_or_create_key(settings.ledger.key_file)

    def seal() -> Summary:
        with transaction(factory) as session:
            head = LedgerService(session, key=key).seal(at=clock.now())
            return {"tree_size": head.tree_size if head else None}

    return seal


def daily_report(factory: sessionmaker[Session], settings: Settings) -> Callable[[], Summary]:
    """The report job: the daily risk warning report of the last business day (written under
    ``[report] out``) sent to ``[report] recipients`` through the ``[followup]`` e-mail relay.

    One process sends each day's report: before sending, the job claims the day by storing a
    ``report_sent`` event keyed by the day and language (a short transaction of its own, so
    that SQLite's writers are not held while the report is written and sent); another worker,
    or a rerun, finds the claim and skips. A failed write or send takes the claim back, so the
    next run tries again. With ``[report] pdf`` a missing renderer stops the command at start.
    """
    from sqlalchemy import delete

    from lienwatch.followup.strategy import configured_strategy
    from lienwatch.reports.daily import (
        day_folder,
        figures_for,
        ledger_public_key,
        write,
        written_figures,
    )
    from lienwatch.reports.mail import send_report
    from lienwatch.store.repositories import insert_ignoring_duplicates
    from lienwatch.store.tables import Event
    from lienwatch.workforce.incentives import incentive_scheme
    from lienwatch.workforce.rules import capacity_rules

    config, relay = settings.report, settings.followup
    catalogue = ProductCatalogue.from_tables(settings.products)
    strategy = configured_strategy(relay.strategy)
    ledger_key = ledger_public_key(settings.ledger.key_file)
    rules = capacity_rules(settings.workforce.capacity_rules)  # a bad file stops the start
    scheme = incentive_scheme(settings.workforce.incentives)
    if config.pdf:
        from lienwatch.reports.pdf import require_renderer

        require_renderer()

    def run() -> Summary:
        now = clock.now()
        with transaction(factory, write=False) as session:  # the figures only read
            figures = figures_for(session, as_of=None, now=now, strategy=strategy,
                                  time_zone=settings.time_zone, catalogue=catalogue,
                                  ledger_key=ledger_key, rules=rules, scheme=scheme,
                                  written=written_figures(config.out, dated=True))  # fmt: skip
        day = figures["as_of"]
        key = f"report:{day}:{config.lang}"
        with transaction(factory) as session:
            claimed = insert_ignoring_duplicates(session, Event.__table__, [{
                "kind": "report_sent", "key": key, "occurred_at": now,
                "payload": {"recipients": list(config.recipients)},
            }])  # fmt: skip
        if not claimed:
            return {"day": day, "sent": 0, "already_sent": True}
        try:
            written = write(figures, day_folder(config.out, day), lang=config.lang, pdf=config.pdf)
            send_report(written, recipients=config.recipients, lang=config.lang,
                        host=relay.smtp_host, port=relay.smtp_port,
                        sender=relay.email_sender)  # fmt: skip
        except BaseException:
            with transaction(factory) as session:
                session.execute(delete(Event).where(Event.key == key))
            raise
        return {"day": day, "sent": len(config.recipients), "html": str(written.html)}

    return run


def capacity_plan(factory: sessionmaker[Session], settings: Settings) -> Callable[[], Summary]:
    """The engine's morning plan (``[workforce] plan_at``): forecast today and tomorrow and
    act on the steps forecast to breach, once a day across workers (the day claimed by a
    ``capacity_plan`` event in the same transaction, so a failed plan leaves no claim)."""
    from lienwatch.services.workforce.shortfall import morning_plan
    from lienwatch.store.repositories import insert_ignoring_duplicates
    from lienwatch.store.tables import Event
    from lienwatch.workforce.rules import capacity_rules

    catalogue = ProductCatalogue.from_tables(settings.products)
    rules = capacity_rules(settings.workforce.capacity_rules)  # a bad file stops the start

    def run() -> Summary:
        now = clock.now()
        with transaction(factory) as session:
            service = FollowupService.from_settings(session, settings.followup,
                                                    time_zone=settings.time_zone,
                                                    catalogue=catalogue)  # fmt: skip
            day = now.astimezone(service.zone).date().isoformat()
            claimed = insert_ignoring_duplicates(session, Event.__table__, [{
                "kind": "capacity_plan", "key": f"capacity_plan:{day}", "occurred_at": now,
                "payload": {},
            }])  # fmt: skip
            if not claimed:
                return {"day": day, "already_planned": True}
            return {"day": day, **morning_plan(service, at=now, rules=rules).as_dict()}

    return run


def scheduler_jobs(factory: sessionmaker[Session], settings: Settings) -> list[Job]:
    """The jobs of ``serve`` and ``worker``: the follow-up tick every ``followup_tick_s``,
    the nightly run at ``nightly_at`` local time (and once at start, to catch up; a failed
    run retried with backoff the same night), the
    ledger's seal every ``[ledger] seal_every_s``, when ``[report] send_at`` is set, the
    daily report at that local time, and when ``[workforce] plan_at`` is (08:00 unless
    unset), the engine's morning capacity plan."""
    scheduler = settings.scheduler
    report = (
        [Job(REPORT, DailyAt(settings.report.send_at, settings.time_zone),
             daily_report(factory, settings))]
        if settings.report.send_at is not None else []
    )  # fmt: skip
    plan = (
        [Job(CAPACITY_PLAN, DailyAt(settings.workforce.plan_at, settings.time_zone),
             capacity_plan(factory, settings))]
        if settings.workforce.plan_at is not None else []
    )  # fmt: skip
    return [
        Job(FOLLOWUP_TICK, Every(scheduler.followup_tick_s), followup_tick(factory, settings)),
        Job(
            NIGHTLY,
            DailyAt(scheduler.nightly_at, settings.time_zone, at_start=True),
            nightly_run(factory, settings),
            retry=Backoff(
                first_s=scheduler.nightly_retry_first_s,
                max_s=NIGHTLY_RETRY_MAX_S,
                for_s=scheduler.nightly_retry_for_s,
            ),
        ),
        Job(LEDGER_SEAL, Every(settings.ledger.seal_every_s), ledger_seal(factory, settings)),
        *report,
        *plan,
    ]
