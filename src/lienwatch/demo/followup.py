"""The demo's follow-up stage: run the engine day by day over the end of the simulated window
with a small simulated collections team, and report what it achieved.

Agents have limited capacity (60 calls or 4 field visits a day, the ``users`` capacity the
assignment respects) and work their queues in office hours after each scheduler tick. What a
contacted borrower says is drawn from what the borrower really does next in the simulated
payments: one who pays within ten days mostly answers and promises that payment; one who
does not answers less, and the few promises made are broken. At the end of each day the
borrowers reached answer through the simulator's contact-response model
(:mod:`lienwatch.demo.response`): some pay because of the conversation. Coverage is therefore
earned by automation and prioritisation, not assumed.
"""

from __future__ import annotations

import bisect
import random
import time as clock
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from lienwatch.adapters.senders import LocalSmsGateway, LogProvider
from lienwatch.config import FollowupSettings, RepossessionSettings
from lienwatch.demo.repossession import DeskSize, RecoveryDesk, recovery_summary
from lienwatch.demo.response import BorrowerResponses
from lienwatch.followup.model import Channel, FollowupError, Outcome
from lienwatch.followup.strategy import configured_strategy
from lienwatch.services.followup import AgentOutcome, FollowupService
from lienwatch.services.followup.coverage import coverage, kpis
from lienwatch.services.payment_anomalies import scan_payments
from lienwatch.services.servicing import run_nightly, run_nightly_days
from lienwatch.services.strategies import strategy_in_force
from lienwatch.services.workforce.capacity import (
    CapacityForecast,
    forecast_accuracy,
    go_live_forecast,
)
from lienwatch.services.workforce.shortfall import morning_plan
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import transaction
from lienwatch.store.repositories import LoanRepository, TeamRepository
from lienwatch.store.servicing import RunCounts, last_run_day
from lienwatch.store.tables import Loan, LoanSnapshot, Payment, Task, User
from lienwatch.workforce.rules import capacity_rules

Progress = Callable[[str, int, int], None]
# The scheduler ticks around the clock (automatic steps and the watchdog do not sleep); the
# agents work their queues in office hours after each tick.
TICKS_LOCAL = tuple(time(hour, 30) for hour in range(0, 24, 2))
WORKDAY_START, WORKDAY_END = time(8, 30), time(18, 0)
MINUTES = {"call": 8, "review": 15, "legal": 30, "visit": 120}  # an agent's time per task
PAYS_SOON_DAYS = 10


@dataclass(frozen=True, slots=True)
class Team:
    """The simulated collections team; a size left None is what the capacity forecast at
    go-live says that skill needs to meet every SLA."""

    phone_agents: int | None = None
    field_agents: int | None = None
    calls_per_day: int = 60
    visits_per_day: int = 4

    def sized(self, plan: CapacityForecast) -> Team:
        """This team with each size left None taken from ``plan`` (at least one agent)."""
        return replace(
            self,
            phone_agents=max(1, plan.needed("phone")) if self.phone_agents is None
            else self.phone_agents,
            field_agents=max(1, plan.needed("field")) if self.field_agents is None
            else self.field_agents,
        )  # fmt: skip


def simulate_followup(
    factory: sessionmaker[Session],
    *,
    start: date,
    end: date,
    catalogue: ProductCatalogue | None = None,
    settings: FollowupSettings | None = None,
    time_zone: str = "Asia/Shanghai",
    team: Team = Team(),  # sizes left None: what the go-live forecast says is needed
    recovery: RepossessionSettings | None = None,
    desk: DeskSize | None = None,
    nightly: bool = False,
    responses: BorrowerResponses | None = None,
    seed: int = 7,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the follow-up engine over the business days ``start``..``end`` (inclusive) of a
    loaded, serviced book and return its figures (coverage with every breach's loan, SLA
    adherence, cure rates by bucket, champion/challenger, KPIs, volumes, and with
    ``recovery`` the repossessions of a :class:`RecoveryDesk` of ``desk``'s size). With
    ``responses`` the borrowers the agents reached answer at the end of each day
    (:class:`~lienwatch.demo.response.BorrowerResponses`: some pay because of the contact).

    Call it after servicing up to the day before ``start`` (and monitoring, whose stored alerts
    become triggers): the day's ticks read the last completed nightly snapshot and the
    ``events`` outbox. With ``nightly`` the nightly run of each day from ``start`` to ``end``
    is made here, before the next day's first tick, as in production (so a sale's proceeds
    are in the next snapshot); otherwise the runs must be there already. Each nightly run,
    tick and working session is one transaction.
    """
    if end < start:
        raise FollowupError(f"end: {end} is before start {start}")
    report = progress or (lambda _stage, _done, _total: None)
    settings = settings or FollowupSettings()
    catalogue = catalogue or ProductCatalogue()
    zone = ZoneInfo(time_zone)
    gateway, printer = LocalSmsGateway(), LocalSmsGateway()  # the SMS cloud, the print house
    providers = {Channel.SMS: gateway, Channel.VOICE: LogProvider(), Channel.EMAIL: gateway,
                 Channel.LETTER: printer}  # fmt: skip
    with factory() as session:  # the version in force (an analyst may have published one)
        strategy = strategy_in_force(session, configured_strategy(settings.strategy))
    rng = random.Random(seed)
    started = clock.perf_counter()
    go_live = datetime.combine(start, WORKDAY_START, tzinfo=zone).astimezone(UTC)
    days = (end - start).days + 1
    with factory() as session:  # the backlog adopted as the first tick will, rolled back
        service = FollowupService.from_settings(session, settings, time_zone=time_zone,
                                                catalogue=catalogue, providers=providers)
        plan = go_live_forecast(service, at=go_live, days=days)
    team = team.sized(plan)
    with transaction(factory) as session:
        agents = _hire(session, team)
        payments = _payments(session)
        installment = LoanRepository(session).regular_installments()
        recovery_desk = None
        if recovery is not None:
            recovery_desk = RecoveryDesk(recovery, payments=payments, until=end, zone=zone,
                                         size=desk or DeskSize(), seed=seed)  # fmt: skip
            recovery_desk.hire(session)
    runs = NightlyRuns(factory, catalogue)
    totals: dict[str, int] = defaultdict(int)  # the first tick, at go-live, adopts the backlog
    for n in range(days):
        day = start + timedelta(days=n)
        if nightly and n > 0:  # the eve of ``start`` is the caller's
            runs.run(day - timedelta(days=1))
        for moment in TICKS_LOCAL:
            now = datetime.combine(day, moment, tzinfo=zone).astimezone(UTC)
            if now < go_live:
                continue
            with transaction(factory) as session:
                service = FollowupService.from_settings(
                    session, settings, time_zone=time_zone, catalogue=catalogue,
                    providers=providers,
                )  # fmt: skip
                _add(totals, service.tick(at=now).as_dict())
                if moment == WORKDAY_START:  # the morning plan acts on what would breach
                    _add(totals, _act_on_forecast(service, now))
                _work(service, session, agents, now, zone, rng, payments, installment, totals)
                if recovery_desk is not None and _in_office(now, zone):
                    steps = recovery_desk.work(session, service, now)
                    _add(totals, {f"repossession_{step}": k for step, k in steps.items()})
        if responses is not None:  # the borrowers reached today answer, and some pay
            midnight = datetime.combine(day, time(), tzinfo=zone)
            with transaction(factory) as session:
                responses.respond(session, day=day, since=midnight.astimezone(UTC),
                                  until=(midnight + timedelta(days=1)).astimezone(UTC),
                                  planned=payments)  # fmt: skip
                responses.pay(session, day=day, at=datetime.combine(
                    day, time(23, 59), tzinfo=zone).astimezone(UTC))  # fmt: skip
        report("follow-up", n + 1, days)
    as_of = datetime.combine(end, WORKDAY_END, tzinfo=zone).astimezone(UTC)
    with transaction(factory) as session:  # each open case gets one owner, for the console
        service = FollowupService.from_settings(session, settings, time_zone=time_zone,
                                                catalogue=catalogue, providers=providers)
        service.assign_open_cases(agents=[a.username for a in agents], at=as_of)
    with transaction(factory) as session:  # at the end of the last working day ...
        cover = coverage(session, as_of=as_of, since=go_live, strategy=strategy,
                         time_zone=time_zone)  # fmt: skip
        figures = kpis(session, since=go_live, as_of=as_of, strategy=strategy, catalogue=catalogue,
                       time_zone=time_zone)  # fmt: skip
        accuracy = forecast_accuracy(session, plan=plan, since=go_live, until=as_of)
        exposures = _exposures(session)
        answered = responses.counts(session) if responses is not None else None
        recovered = None
        if recovery is not None:
            recovered = {**recovery_summary(session), "min_dpd": recovery.min_dpd}
    if nightly:  # ... before that night's run
        runs.run(end)
    return {
        "days": days,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "period": {"since": go_live.isoformat(), "as_of": as_of.isoformat()},
        "team": {"phone_agents": team.phone_agents, "field_agents": team.field_agents,
                 "needed": {"phone": plan.needed("phone"), "field": plan.needed("field")}},
        "forecast": {"pools": [pool.as_dict() for pool in plan.pools],
                     "expected_breaches": plan.as_dict()["expected_breaches"],
                     "guard_bound": [late.work.loan for late in plan.guard_bound],
                     "accuracy": accuracy},
        "coverage": cover.coverage,
        "triggers": cover.triggers,
        "repossession_steps": cover.steps,
        "breaches": [{**b.as_dict(), "exposure": exposures.get(b.loan)} for b in cover.breaches],
        "median_exposure": _median([v for v in exposures.values() if v]),
        "uncovered": [u.as_dict() for u in cover.uncovered],
        "sla_adherence": 1 - figures["sla_breach_rate"]["rate"] if cover.obligations else 1.0,
        "volumes": {**totals, "sms_sent": len(gateway.sent), "letters_posted": len(printer.sent)},
        "kpis": figures,
        "repossession": recovered,
        "borrower_responses": answered,
        "nightly": runs.counts(),
        "seconds": round(clock.perf_counter() - started, 2),
    }


def _exposures(session: Session) -> dict[str, int]:
    """Each live loan's unsecured exposure in fen in the latest nightly run (where the
    breaches fell: the plan puts them on the smallest)."""
    day = last_run_day(session)
    return dict(session.execute(
        select(Loan.ref, LoanSnapshot.unsecured).join(Loan, Loan.id == LoanSnapshot.loan_id)
        .where(LoanSnapshot.as_of == day)).all())  # fmt: skip


def _median(values: list[int]) -> int | None:
    return sorted(values)[len(values) // 2] if values else None


class NightlyRuns:
    """The servicing nightly run of a day, each in its own transaction, counted."""

    def __init__(self, factory: sessionmaker[Session], catalogue: ProductCatalogue) -> None:
        self.factory = factory
        self.catalogue = catalogue
        self.runs = self.bucket_changes = self.status_changes = self.payment_anomalies = 0
        self.last: date | None = None

    def run(self, day: date) -> None:
        """The day's run, then the payments since the previous run through the
        abnormal-payment rules, as the nightly job does (known at the end of the day)."""
        with transaction(self.factory) as session:
            counts = run_nightly(session, self.catalogue, as_of=day)
        self._scan_and_count(day, counts)

    def run_days(self, days: Sequence[date]) -> None:
        """The runs of ``days`` (increasing) in one pass and one transaction
        (:func:`run_nightly_days`), then each day's payments scanned as :meth:`run` does (the
        scan reads no run's results)."""
        with transaction(self.factory) as session:
            counted = run_nightly_days(session, self.catalogue, days=days)
        for day, counts in zip(days, counted, strict=True):
            self._scan_and_count(day, counts)

    def _scan_and_count(self, day: date, counts: RunCounts) -> None:
        since = day if self.last is None else self.last + timedelta(days=1)
        with transaction(self.factory) as session:
            end = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
            self.payment_anomalies += len(scan_payments(session, since=since, through=day,
                                                        at=end))  # fmt: skip
        self.last = day
        self.runs += 1
        self.bucket_changes += counts.bucket_changes
        self.status_changes += counts.status_changes

    def counts(self) -> dict[str, int]:
        return {"nightly_runs": self.runs, "bucket_changes": self.bucket_changes,
                "status_changes": self.status_changes,
                "payment_anomalies": self.payment_anomalies}  # fmt: skip


def _add(totals: dict[str, int], tick: dict[str, Any]) -> None:
    for key, value in tick.items():
        if isinstance(value, dict):  # raised and unstaffed, by kind
            for kind, count in value.items():
                totals[f"{key}_{kind}"] += count
        else:
            totals[key] += value


SUPERVISOR = "supervisor1"  # the phone team's supervisor


def _hire(session: Session, team: Team) -> list[User]:
    """The team's users (created once; a rerun reuses them)."""
    # collector1… work the phones, the next ones the field: the console's demo accounts
    wanted = [(f"collector{i + 1}", "phone", "collections-phone", team.calls_per_day)
              for i in range(team.phone_agents)]  # fmt: skip
    wanted += [(f"collector{team.phone_agents + i + 1}", "field", "collections-field",
                team.visits_per_day) for i in range(team.field_agents)]  # fmt: skip
    TeamRepository(session).ensure("collections-phone", "collections-field")
    existing = {u.username: u for u in session.scalars(select(User))}
    users = []
    for name, mode, team_name, capacity in wanted:
        user = existing.get(name) or User(username=name, display_name=name, role="agent")
        user.team, user.skills, user.daily_capacity, user.active = (
            team_name, {"mode": mode}, capacity, True)  # fmt: skip
        session.add(user)
        users.append(user)
    if SUPERVISOR not in existing:
        session.add(User(username=SUPERVISOR, display_name="Supervisor", role="supervisor",
                         team="collections-phone"))  # fmt: skip
    session.flush()
    return users


def _act_on_forecast(service: FollowupService, now: datetime) -> dict[str, int]:
    """The engine's morning pass: forecast today and tomorrow, act on the steps forecast to
    breach (substituted, reassigned or ordered, each on the case's timeline)."""
    acted = morning_plan(service, at=now, rules=capacity_rules())
    return {f"plan_{kind}": n for kind, n in acted.as_dict().items()}


def _payments(session: Session) -> dict[int, list[tuple[date, int]]]:
    by_loan: dict[int, list[tuple[date, int]]] = defaultdict(list)
    rows = session.execute(
        select(Payment.loan_id, Payment.paid_on, Payment.amount)
        .where(Payment.reversed_at.is_(None)).order_by(Payment.loan_id, Payment.paid_on)
    )  # fmt: skip
    for loan_id, paid_on, amount in rows:
        by_loan[loan_id].append((paid_on, amount))
    return by_loan


def _work(
    service: FollowupService,
    session: Session,
    agents: list[User],
    now: datetime,
    zone: ZoneInfo,
    rng: random.Random,
    payments: dict[int, list[tuple[date, int]]],
    installment: dict[int, int],
    totals: dict[str, int],
) -> None:
    """Each agent works the assigned queue, most urgent first, until the next tick or the end
    of the working day."""
    local = now.astimezone(zone)
    if not _in_office(now, zone):
        return
    next_ticks = [t for t in TICKS_LOCAL if t > local.time()]
    stop_local = min(next_ticks[0], WORKDAY_END) if next_ticks else WORKDAY_END
    stop = datetime.combine(local.date(), stop_local, tzinfo=zone).astimezone(UTC)
    for agent in agents:
        at = now + timedelta(minutes=5)
        worked: list[tuple[Task, AgentOutcome]] = []
        for task in service.queue(agent=agent.username):
            if at >= stop:
                break
            worked.append((task, _outcome(task, at, local.date(), rng, payments, installment)))
            at += timedelta(minutes=MINUTES.get(task.channel, 10))
        recorded = service.record_outcomes(by=agent.username, outcomes=[o for _, o in worked])
        for (task, _), result in zip(worked, recorded, strict=True):
            if isinstance(result, FollowupError):  # a refusal is recorded; the task stays queued
                totals["agent_refused_by_guard"] += 1
            else:
                totals[f"agent_{task.channel}"] += 1
    session.flush()


def _in_office(now: datetime, zone: ZoneInfo) -> bool:
    return WORKDAY_START <= now.astimezone(zone).time() < WORKDAY_END


def _outcome(
    task: Task,
    at: datetime,
    today: date,
    rng: random.Random,
    payments: dict[int, list[tuple[date, int]]],
    installment: dict[int, int],
) -> AgentOutcome:
    """What the agent records on ``task`` at ``at``."""
    extra: dict[str, Any] = {}
    if task.channel in ("review", "legal"):
        outcome = Outcome.CHECKED
    else:
        outcome, extra = _borrower_answer(task.loan_id, today, rng, payments, installment)
        if task.channel == "visit":
            extra["recording_ref"] = f"rec://demo/visit/{task.id}"
    return AgentOutcome(task.id, at, outcome, **extra)


def _borrower_answer(
    loan_id: int,
    today: date,
    rng: random.Random,
    payments: dict[int, list[tuple[date, int]]],
    installment: dict[int, int],
) -> tuple[Outcome, dict[str, Any]]:
    """What the borrower says, drawn from what the borrower really does next."""
    paid = payments.get(loan_id, [])
    i = bisect.bisect_left(paid, (today, -1))
    upcoming = paid[i] if i < len(paid) and (paid[i][0] - today).days <= PAYS_SOON_DAYS else None
    draw = rng.random()
    if upcoming is not None:
        if draw < 0.6:
            return Outcome.PROMISE_TO_PAY, {"promised_on": upcoming[0], "amount": upcoming[1]}
        if draw < 0.8:
            return Outcome.RIGHT_PARTY_CONTACT, {}
        return (Outcome.NO_ANSWER if draw < 0.95 else Outcome.WRONG_NUMBER), {}
    if draw < 0.4:
        return Outcome.NO_ANSWER, {}
    if draw < 0.55:
        return Outcome.RIGHT_PARTY_CONTACT, {}
    if draw < 0.7:
        promised = today + timedelta(days=3)
        return Outcome.PROMISE_TO_PAY, {"promised_on": promised,
                                        "amount": installment.get(loan_id, 100_000)}  # fmt: skip
    if draw < 0.8:
        return Outcome.REFUSED, {}
    if draw < 0.85:
        return Outcome.HARDSHIP, {}
    return (Outcome.UNREACHABLE if draw < 0.95 else Outcome.WRONG_NUMBER), {}
