"""The demo's repossession stage: every loan of an open case that the last nightly run shows
past the DPD floor goes through the whole workflow, and the stage reports what came back.

The timeline is compressed into the days after ``as_of`` (ordered and approved the next
morning, recovered that day, appraised the next, sold the day after) so the sale is still
within the snapshot age the policy accepts. The route, the costs and the auction discount
are drawn with a seeded generator; the appraisal is the snapshot's collateral value.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from lienwatch.config import FollowupSettings, RepossessionSettings
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import transaction
from lienwatch.store.followup import FollowupService
from lienwatch.store.repossession import RepossessionService
from lienwatch.store.tables import Case, LoanSnapshot, User

ROUTES = (("negotiated_handover", 0.6), ("security_enforcement", 0.3), ("court_order", 0.1))
STAFF = (("repo-officer", "agent"), ("repo-supervisor", "supervisor"), ("recovery-agent", "agent"))


def simulate_repossessions(
    factory: sessionmaker[Session],
    *,
    as_of: date,
    catalogue: ProductCatalogue | None = None,
    followup: FollowupSettings | None = None,
    settings: RepossessionSettings | None = None,
    seed: int = 7,
) -> dict[str, Any]:
    """Repossess and dispose of every eligible loan after the nightly run of ``as_of`` (one
    transaction per loan) and return the totals in fen: proceeds, costs recovered, paid to
    loans, surpluses, deficiencies written off, and the recovery rate (paid to loans over
    their payoff). Call it after the follow-up stage (the loans need open cases)."""
    followup = followup or FollowupSettings()
    settings = settings or RepossessionSettings()
    zone = ZoneInfo(followup.business_time_zone)
    rng = random.Random(seed)
    with transaction(factory) as session:
        _hire(session)
        eligible = _eligible(session, as_of, settings.min_dpd)
    totals: Counter[str] = Counter()
    for loan_id, appraisal in eligible:
        with transaction(factory) as session:
            service = RepossessionService.from_settings(
                session,
                settings,
                followup=FollowupService.from_settings(session, followup, catalogue=catalogue),
            )
            _dispose(service, loan_id, appraisal, as_of, zone, rng, totals)
    payoff = totals["to_loan"] + totals["deficiency"]
    return {
        "as_of": as_of.isoformat(),
        "repossessed": len(eligible),
        **totals,
        "recovery_rate": totals["to_loan"] / payoff if payoff else 0.0,
    }


def _hire(session: Session) -> None:
    existing = set(session.scalars(select(User.username)))
    session.add_all(
        User(username=name, display_name=name, role=role, team="recovery")
        for name, role in STAFF
        if name not in existing
    )


def _eligible(session: Session, as_of: date, min_dpd: int) -> list[tuple[int, int]]:
    """Loans with an open case at least ``min_dpd`` past due on ``as_of``, with their
    collateral value."""
    rows = session.execute(
        select(LoanSnapshot.loan_id, LoanSnapshot.collateral_value)
        .join(Case, Case.loan_id == LoanSnapshot.loan_id)
        .where(LoanSnapshot.as_of == as_of, LoanSnapshot.dpd >= min_dpd, Case.status != "closed")
        .order_by(LoanSnapshot.loan_id)
    ).all()
    return [(loan_id, value) for loan_id, value in rows]


def _dispose(
    service: RepossessionService,
    loan_id: int,
    appraisal: int,
    as_of: date,
    zone: ZoneInfo,
    rng: random.Random,
    totals: Counter[str],
) -> None:
    def at(days: int, hour: int) -> datetime:
        local = datetime.combine(as_of + timedelta(days=days), time(hour), tzinfo=zone)
        return local.astimezone(UTC)

    route = rng.choices([r for r, _ in ROUTES], weights=[w for _, w in ROUTES])[0]
    repo = service.order(loan_id=loan_id, route=route, legal_ref=f"DEMO-{loan_id}",
                         by="repo-officer", at=at(1, 9), why="past the DPD floor")  # fmt: skip
    service.approve(repossession_id=repo.id, by="repo-supervisor", assignee="recovery-agent",
                    at=at(1, 10))  # fmt: skip
    service.record_recovery(
        repossession_id=repo.id, by="recovery-agent", at=at(1, 17),
        recovered_on=as_of + timedelta(days=1), place="borrower's residence",
        condition="drivable", property_returned=True,
    )  # fmt: skip
    for kind, amount in (("recovery", rng.randint(150_000, 300_000)), ("storage", 3 * 5_000)):
        service.add_cost(repossession_id=repo.id, kind=kind, amount=amount,
                         incurred_on=as_of + timedelta(days=1), by="recovery-agent",
                         at=at(1, 18))  # fmt: skip
    service.record_appraisal(repossession_id=repo.id, by="recovery-agent", at=at(2, 10),
                             value=max(appraisal, 1), appraiser="demo appraiser")  # fmt: skip
    price = max(round(appraisal * rng.uniform(0.75, 1.0)), 1)  # the auction discount
    service.record_sale(
        repossession_id=repo.id, by="recovery-agent", at=at(3, 15),
        sold_on=as_of + timedelta(days=3), price=price, buyer="auction",
    )  # fmt: skip
    split = service.post_proceeds(repossession_id=repo.id, by="repo-officer", at=at(3, 17))
    if split.surplus:
        service.return_surplus(repossession_id=repo.id, by="repo-officer", at=at(4, 10),
                               reference=f"DEMO-REFUND-{loan_id}")  # fmt: skip
    if split.deficiency:
        service.write_off(repossession_id=repo.id, by="repo-supervisor", at=at(3, 18),
                          why="deficiency after the sale")  # fmt: skip
    totals.update(
        proceeds=split.proceeds, costs_recovered=split.costs_recovered, to_loan=split.to_loan,
        surplus=split.surplus, deficiency=split.deficiency,
        settled=int(not split.deficiency), written_off=int(bool(split.deficiency)),
    )  # fmt: skip
