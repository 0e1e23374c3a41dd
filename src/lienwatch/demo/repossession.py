"""The demo's recovery desk (收车与处置): repossessions worked day by day beside the follow-up.

Each business day, after the morning tick, the desk orders the repossession of loans whose
last nightly run shows them past the DPD floor (the largest unsecured exposures first, a few a
day), and takes every open repossession's next step once its time has come: a supervisor
approves within hours, the vehicle is recovered within days (a negotiated handover sooner
than a court route), appraised, sold at the next auctions, and the proceeds are posted through
servicing; a surplus goes back to the borrower, a deficiency is written off. How long each step
takes is drawn from a generator seeded by the repossession and the step, so a rerun is the
same; now and then a step runs past its SLA, as in life, and the watchdog sees it.

A borrower who pays before the business date is not ordered against: in the simulation the
desk's negotiation is what the borrower's real payments say, as with the agents' calls.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lienwatch.config import RepossessionSettings
from lienwatch.followup.repossession import FINAL, NEXT_STEP, RepoStatus
from lienwatch.services.followup import FollowupService
from lienwatch.services.repossession import RepossessionService
from lienwatch.store.repositories import TeamRepository
from lienwatch.store.tables import Case, LoanSnapshot, Repossession, User

ROUTES = (("negotiated_handover", 0.6), ("security_enforcement", 0.3), ("court_order", 0.1))
STAFF = (("repo-officer", "agent"), ("repo-supervisor", "supervisor"), ("recovery-agent", "agent"))
# Days a recovery takes by route: a handover is arranged quickly, a court route takes longer.
RECOVERY_DAYS = {"negotiated_handover": (1, 4), "security_enforcement": (4, 11),
                 "court_order": (6, 13)}  # fmt: skip
STORAGE_PER_DAY = 5_000  # fen: 50 yuan a day in the storage yard
LATE_SHARE = 0.04  # steps that overrun their SLA

Payments = dict[int, list[tuple[date, int]]]


@dataclass(frozen=True, slots=True)
class DeskSize:
    """How many repossessions the desk may order a day."""

    orders_per_day: int = 2

    @classmethod
    def for_book(cls, loans: int) -> DeskSize:
        return cls(orders_per_day=max(2, loans // 1000))


class RecoveryDesk:
    """The simulated recovery team; :meth:`work` acts at one moment in the caller's session."""

    def __init__(
        self,
        settings: RepossessionSettings,
        *,
        payments: Payments,
        until: date,
        zone: ZoneInfo,
        size: DeskSize = DeskSize(),
        seed: int = 7,
    ) -> None:
        self.settings = settings
        self.payments = payments
        self.until = until  # the business date: a payment up to it redeems the car
        self.zone = zone
        self.size = size
        self.seed = seed
        self._since: dict[int, datetime] = {}  # repossession -> when its last step was taken
        self._order_days: set[date] = set()

    def hire(self, session: Session) -> None:
        """The desk's staff (created once; a rerun reuses them). Their skill is recovery, so
        the follow-up queues (phone and field work) are not handed to them."""
        TeamRepository(session).ensure("recovery")
        existing = set(session.scalars(select(User.username)))
        session.add_all(
            User(
                username=name,
                display_name=name,
                role=role,
                team="recovery",
                skills={"mode": "recovery"},
            )
            for name, role in STAFF
            if name not in existing
        )
        session.flush()

    def work(self, session: Session, followup: FollowupService, now: datetime) -> Counter[str]:
        """Take every step whose time has come by ``now``, then order today's repossessions;
        return what was done by step."""
        service = RepossessionService.from_settings(session, self.settings, followup=followup)
        done: Counter[str] = Counter()
        open_repos = session.scalars(
            select(Repossession)
            .where(Repossession.status.not_in([s.value for s in FINAL]))
            .order_by(Repossession.id)
        ).all()
        for repo in open_repos:
            since = self._since.get(repo.id)
            if since is None:
                continue  # not this desk's (ordered by someone else)
            at = self._next_time(repo, since)
            if at <= now:
                done[self._take_step(service, repo, at)] += 1
                self._since[repo.id] = at
        today = now.astimezone(self.zone).date()
        if today in self._order_days:
            return done
        self._order_days.add(today)  # orders are decided once a day, at the first session
        for loan_id in self._to_order(session, today):
            repo = self._order(service, loan_id, now + timedelta(minutes=5 * (done["order"] + 1)))
            self._since[repo.id] = repo.ordered_at
            done["order"] += 1
        return done

    # ------------------------------------------------------------------ choosing

    def _to_order(self, session: Session, today: date) -> list[int]:
        """Loans with an open case and no repossession, at least ``min_dpd`` past due in the
        last nightly run, that will not pay before the business date; largest unsecured
        exposure first, as many as the desk orders a day."""
        latest = session.scalar(
            select(func.max(LoanSnapshot.as_of)).where(LoanSnapshot.as_of < today)
        )
        if latest is None:
            return []
        rows = session.execute(
            select(LoanSnapshot.loan_id)
            .join(Case, Case.loan_id == LoanSnapshot.loan_id)
            .outerjoin(Repossession, Repossession.case_id == Case.id)
            .where(
                LoanSnapshot.as_of == latest,
                LoanSnapshot.dpd >= self.settings.min_dpd,
                Case.status != "closed",
                Repossession.id.is_(None),
            )
            .order_by(LoanSnapshot.unsecured.desc(), LoanSnapshot.loan_id)
        ).scalars()
        chosen = [loan_id for loan_id in rows if not self._pays(loan_id, today)]
        return chosen[: self.size.orders_per_day]

    def _pays(self, loan_id: int, today: date) -> bool:
        paid = self.payments.get(loan_id, [])
        i = bisect.bisect_left(paid, (today, -1))
        return i < len(paid) and paid[i][0] <= self.until

    # ------------------------------------------------------------------ the steps

    def _order(self, service: RepossessionService, loan_id: int, at: datetime) -> Repossession:
        rng = random.Random(f"{self.seed}:order:{loan_id}")
        route = rng.choices([r for r, _ in ROUTES], weights=[w for _, w in ROUTES])[0]
        return service.order(loan_id=loan_id, route=route, legal_ref=f"DEMO-{loan_id}",
                             by="repo-officer", at=at, why="past the DPD floor")  # fmt: skip

    def _next_time(self, repo: Repossession, since: datetime) -> datetime:
        """When the desk takes ``repo``'s next step: a seeded delay after the last one, in
        office hours, past the step's SLA now and then."""
        rng = random.Random(f"{self.seed}:{repo.id}:{repo.status}")
        late = rng.random() < LATE_SHARE
        if repo.status == "ordered":  # a supervisor approves within hours
            hours = rng.uniform(26, 30) if late else rng.uniform(1, 6)
            return self._office_hours(since + timedelta(hours=hours), rng)
        if repo.status == "sold":  # the proceeds are posted the same day
            return since + timedelta(hours=rng.uniform(1, 3))
        low, high = {
            "approved": RECOVERY_DAYS[repo.route],
            "recovered": (1, 2),  # appraisal
            "appraised": (4, 12),  # the next auctions
            "surplus_due": (1, 5),
            "deficiency": (2, 10),
        }[repo.status]
        days = high + 20 if late else rng.randint(low, high)
        return self._office_hours(since + timedelta(days=days), rng)

    def _office_hours(self, at: datetime, rng: random.Random) -> datetime:
        """``at`` moved into 09:00–17:00 local time (the next morning when after hours)."""
        local = at.astimezone(self.zone)
        if local.time() >= time(17):
            local = datetime.combine(local.date() + timedelta(days=1), time(9), tzinfo=self.zone)
        elif local.time() < time(9):
            local = datetime.combine(local.date(), time(9), tzinfo=self.zone)
        return (local + timedelta(minutes=rng.randint(0, 120))).astimezone(at.tzinfo)

    def _take_step(self, service: RepossessionService, repo: Repossession, at: datetime) -> str:
        day = at.astimezone(self.zone).date()
        rng = random.Random(f"{self.seed}:{repo.id}:figures")
        steps: dict[str, Callable[[], Any]] = {
            "ordered": lambda: service.approve(
                repossession_id=repo.id, by="repo-supervisor", assignee="recovery-agent", at=at
            ),
            "approved": lambda: self._recover(service, repo, at, day, rng),
            "recovered": lambda: self._appraise(service, repo, at, rng),
            "appraised": lambda: self._sell(service, repo, at, day, rng),
            "sold": lambda: service.post_proceeds(
                repossession_id=repo.id, by="repo-officer", at=at
            ),
            "surplus_due": lambda: service.return_surplus(
                repossession_id=repo.id,
                by="repo-officer",
                at=at,
                reference=f"DEMO-REFUND-{repo.loan_id}",
            ),
            "deficiency": lambda: service.write_off(
                repossession_id=repo.id,
                by="repo-supervisor",
                at=at,
                why="deficiency after the sale",
            ),
        }
        step = NEXT_STEP[RepoStatus(repo.status)]
        steps[repo.status]()
        return step

    def _recover(
        self, service: RepossessionService, repo: Repossession, at: datetime, day: date,
        rng: random.Random,
    ) -> None:  # fmt: skip
        service.record_recovery(repossession_id=repo.id, by="recovery-agent", at=at,
                                recovered_on=day, place="borrower's residence",
                                condition=rng.choice(("drivable", "drivable", "damaged")),
                                property_returned=True)  # fmt: skip
        service.add_cost(repossession_id=repo.id, kind="recovery",
                         amount=rng.randint(150_000, 300_000), incurred_on=day,
                         by="recovery-agent", at=at)  # fmt: skip

    def _appraise(
        self, service: RepossessionService, repo: Repossession, at: datetime, rng: random.Random
    ) -> None:
        value = service.session.scalar(
            select(LoanSnapshot.collateral_value)
            .where(LoanSnapshot.loan_id == repo.loan_id)
            .order_by(LoanSnapshot.as_of.desc())
            .limit(1)
        )
        damaged = repo.condition == "damaged"
        appraised = max(round((value or 0) * (0.8 if damaged else 1.0)), 1)
        service.add_cost(repossession_id=repo.id, kind="appraisal", amount=80_000,
                         incurred_on=at.astimezone(self.zone).date(), by="recovery-agent",
                         at=at)  # fmt: skip
        service.record_appraisal(repossession_id=repo.id, by="recovery-agent", at=at,
                                 value=appraised, appraiser="demo appraiser")  # fmt: skip

    def _sell(
        self, service: RepossessionService, repo: Repossession, at: datetime, day: date,
        rng: random.Random,
    ) -> None:  # fmt: skip
        assert repo.recovered_on is not None and repo.appraised_value is not None
        stored_days = (day - repo.recovered_on).days + 1
        service.add_cost(repossession_id=repo.id, kind="storage",
                         amount=stored_days * STORAGE_PER_DAY, incurred_on=day,
                         by="recovery-agent", at=at)  # fmt: skip
        price = max(round(repo.appraised_value * rng.uniform(0.75, 1.0)), 1)  # auction discount
        service.add_cost(repossession_id=repo.id, kind="auction", amount=round(price * 0.03),
                         incurred_on=day, by="recovery-agent", at=at)  # fmt: skip
        service.record_sale(repossession_id=repo.id, by="recovery-agent", at=at, sold_on=day,
                            price=price, buyer="auction")  # fmt: skip


def recovery_summary(session: Session) -> dict[str, Any]:
    """What the repossessions in the store came to: how many by status, and the money in fen
    (proceeds, costs recovered, paid to loans, surpluses, deficiencies) with the recovery
    rate (paid to loans over what the sold loans owed)."""
    by_status: dict[str, int] = {
        status: count
        for status, count in session.execute(
            select(Repossession.status, func.count()).group_by(Repossession.status)
        )
    }
    sums = session.execute(
        select(
            func.coalesce(func.sum(Repossession.sale_price), 0),
            func.coalesce(func.sum(Repossession.costs_recovered), 0),
            func.coalesce(func.sum(Repossession.paid_to_loan), 0),
            func.coalesce(func.sum(Repossession.surplus), 0),
            func.coalesce(func.sum(Repossession.deficiency), 0),
        ).where(Repossession.paid_to_loan.is_not(None))
    ).one()
    proceeds, costs, to_loan, surplus, deficiency = (int(v) for v in sums)
    owed = to_loan + deficiency
    return {
        "ordered": sum(by_status.values()),
        "by_status": dict(sorted(by_status.items())),
        "proceeds": proceeds,
        "costs_recovered": costs,
        "to_loan": to_loan,
        "surplus": surplus,
        "deficiency": deficiency,
        "recovery_rate": to_loan / owed if owed else None,
    }
