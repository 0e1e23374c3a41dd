"""The small book the console's browser tests work on, at TEST_NOW (10:00 on a Tuesday in
Shanghai): three loans past due with an agent call each in a queue, a car that parked for
half a day, an alert, and a tracker command waiting for a supervisor's approval.

- L1 (collector1, the top of the queue): Beijing borrower, a track with a long stay and two
  open alerts (``long_stay``, ``power_cut``); contact allowed now.
- L2 (collector1): the borrower lives in London, where it is 02:00: the guard refuses a call
  (quiet hours) until 08:00 there.
- L3 (collector2): collector2 asked to immobilise the car; the request waits for supervisor1.
- L4 (collector2): about 120 days past due, its car registered to it (抵押登记); collector2
  ordered its repossession through the court, which waits for supervisor1's approval.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from lienwatch import clock
from lienwatch.config import FollowupSettings, RepossessionSettings
from lienwatch.followup.model import FollowupRefused, TriggerKind
from lienwatch.monitor.model import iso_utc
from lienwatch.services.auth import AuthService
from lienwatch.services.followup import FollowupService
from lienwatch.services.repossession import RepossessionService
from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.repositories import PositionRepository, TeamRepository, UserRepository
from lienwatch.store.tables import Alert, Borrower, Case, Device, Task
from tests import factories

USERS = (("admin", "admin", None), ("supervisor1", "supervisor", "east"),
         ("collector1", "agent", "east"), ("collector2", "agent", "east"),
         ("analyst1", "analyst", None), ("auditor1", "auditor", None))  # fmt: skip
STAY = (39.9087, 116.3975)  # where L1's car stood from the evening until the next morning


@dataclass(frozen=True)
class Seeded:
    password: str
    cases: dict[str, int]  # loan reference -> case id
    tasks: dict[str, int]  # loan reference -> the queued agent call
    repossession: int  # L4's order


def seed(url: str) -> Seeded:
    """Migrate the database at ``url`` and fill it (see the module docstring)."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = session_factory(engine)
    now = clock.now()
    password = secrets.token_urlsafe(12)
    today = now.date()
    with transaction(factory) as session:
        TeamRepository(session).add(name="east")
        auth = AuthService(session)
        for name, role, team in USERS:
            UserRepository(session).add(username=name, role=role, team=team)
            auth.set_password(username=name, password=password, by="test", at=now)
        loans = {ref: factories.loan_fallen_due(session, ref, today=today)
                 for ref in ("L1", "L2", "L3")}  # fmt: skip
        loans["L4"] = factories.loan(session, "L4", disbursed_on=today - timedelta(days=150))
        factories.pledge(session, loans["L4"])
        london = session.get_one(Borrower, loans["L2"].borrower_id)
        london.time_zone, london.city = "Europe/London", "London"
        run_nightly(session, ProductCatalogue(), as_of=today - timedelta(days=1))
    cases, tasks = {}, {}
    with transaction(factory) as session:
        service = FollowupService.from_settings(session, FollowupSettings(),
                                                time_zone="Asia/Shanghai")  # fmt: skip
        owners = {"L1": "collector1", "L2": "collector1", "L3": "collector2", "L4": "collector2"}
        for priority, (ref, loan) in enumerate(loans.items()):
            trigger = service.raise_trigger(
                loan_id=loan.id, kind=TriggerKind.MISSED_INSTALLMENT, source_key=f"seed:{ref}",
                anchor_at=now - timedelta(days=5), at=now,
            )  # fmt: skip
            assert trigger is not None
            agent = UserRepository(session).get(owners[ref])
            task = Task(key=f"seed:{ref}", trigger_id=trigger.id, case_id=trigger.case_id,
                        loan_id=loan.id, step=trigger.step, channel="call", skill="phone",
                        team="east", due_at=now - timedelta(hours=1),
                        deadline_at=now + timedelta(hours=6), priority=300 - 100 * priority,
                        status="queued", assignee_id=agent.id, assigned_at=now)  # fmt: skip
            session.add(task)
            session.get_one(Case, trigger.case_id).assignee_id = agent.id
            session.flush()
            cases[ref], tasks[ref] = trigger.case_id, task.id
        _track_and_alert(session, loans["L1"], now)
        repossession = RepossessionService.from_settings(
            session, RepossessionSettings(), followup=service
        ).order(loan_id=loans["L4"].id, route="court_order", legal_ref="(2026)京0105民初123号",
                by="collector2", at=now, why="no payment for four months")  # fmt: skip
    try:
        with transaction(factory) as session:
            FollowupService.from_settings(session, FollowupSettings(),
                                          time_zone="Asia/Shanghai").command_tracker(
                loan_ref="L3", command="immobilise", by="collector2", at=now)  # fmt: skip
    except FollowupRefused:
        pass  # an agent's request waits for a supervisor: that refusal is the request
    engine.dispose()
    return Seeded(password, cases, tasks, repossession.id)


def _track_and_alert(session, loan, now) -> None:
    """L1's tracker: three days of fixes every 20 minutes, driving about Beijing by day and
    standing at STAY from 19:00 to 07:00 (Shanghai) the last night; a long-stay alert."""
    device = factories.device(session, "013900001111")
    device.vehicle_id = loan.vehicle_id
    rows = []
    start = now - timedelta(days=3)
    for n in range(3 * 24 * 3):
        at = start + timedelta(minutes=20 * n)
        hour = (at.hour + 8) % 24
        parked = at >= now - timedelta(hours=15) and at <= now - timedelta(hours=3)
        lat, lon = STAY if parked else (39.85 + 0.1 * ((n * 7) % 11) / 11,
                                        116.30 + 0.2 * ((n * 5) % 13) / 13)  # fmt: skip
        if not parked and not 7 <= hour < 22:
            lat, lon = 39.95, 116.45  # home at night
        rows.append({"device_id": device.id, "fix_time": at, "lat": lat, "lon": lon,
                     "speed_kmh": 0.0 if parked else 35.0})  # fmt: skip
    PositionRepository(session).add_many(rows)
    session.add(Alert(type="long_stay", severity="warning", status="open",
                      vehicle_id=loan.vehicle_id, device_id=device.id, loan_id=loan.id,
                      started_at=now - timedelta(hours=15), lat=STAY[0], lon=STAY[1],
                      province_code="11", exposure=2_500_000, raised_at=now - timedelta(hours=3),
                      evidence={"stay_hours": 12, "radius_m": 200, "threshold_hours": 8,
                                "at": {"lat": STAY[0], "lon": STAY[1]}}))  # fmt: skip
    session.add(Alert(type="power_cut", severity="critical", status="open",
                      vehicle_id=loan.vehicle_id, device_id=device.id, loan_id=loan.id,
                      started_at=now - timedelta(hours=2), lat=STAY[0], lon=STAY[1],
                      province_code="11", exposure=2_500_000, raised_at=now - timedelta(hours=2),
                      evidence={"rule": "power_cut", "thresholds": {},
                                "why": "the tracker reported a main-power-cut alarm",
                                "fixes": [{"device": device.ident, "lat": STAY[0],
                                           "lon": STAY[1], "alarms": "power_cut",
                                           "time": iso_utc(int((now - timedelta(hours=2))
                                                               .timestamp()))}]}))  # fmt: skip
    session.flush()
    assert session.get(Device, device.id) is not None
