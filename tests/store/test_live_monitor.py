"""The live monitor on a real store and the in-process position bus (``running_monitor``).

Each scenario gets a database of its own (the monitor watches every vehicle in it), fixes go
through the bus as the gateway publishes them, and the thresholds are seconds long so the
real clock raises silences within the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch import clock
from lienwatch.config import BusSettings, GatewaySettings, MonitorSettings, Settings
from lienwatch.data import province_index
from lienwatch.runtime import open_ingest, running_monitor
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.monitoring import load_fleet, recent_fixes
from lienwatch.store.repositories import AlertRepository, DeviceRepository, LoanRepository
from lienwatch.store.tables import Alert, Loan, LoanSnapshot, Position
from lienwatch.telematics.fixes import Fix
from tests import factories

BEIJING = (39.91, 116.46)  # the factories' borrower lives here; loans are booked in 11
HEBEI = (38.04, 114.51)  # Shijiazhuang, province 13
EXPOSURE = 1_234_500  # fen, the unsecured exposure of the latest snapshot


def settings(**monitor: Any) -> Settings:
    """Seconds-long thresholds: offline after 4 s of silence, removal 1.1 s after a power cut,
    out of the province for 1.1 s; the test's car crosses provinces in seconds, so position
    jumps are left out. (Fix times are whole seconds: fixes 2 s apart may be 3 s apart.)"""
    thresholds = {"offline_wired_h": 0.0011, "offline_min_intervals": 1,
                  "removal_silence_min_h": 0.0003, "left_region_h": 0.0003,
                  "jump_min_km": 1000}  # fmt: skip
    options = {"reorder_window_s": 0, "advance_s": 0.1, "fleet_refresh_s": 3600,
               "warmup_h": 1, "thresholds": thresholds, **monitor}  # fmt: skip
    return Settings(monitor=MonitorSettings(**options))


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'live.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def in_store(url: str, work: Callable[[Session], Any]) -> Any:
    """Run ``work`` in one committed transaction of the store at ``url``."""
    engine = make_engine(url)
    try:
        with transaction(session_factory(engine)) as session:
            return work(session)
    finally:
        engine.dispose()


def wired_loan(session: Session, ref: str, ident: str, *, exposure: int | None = EXPOSURE):
    """A loan whose car carries a wired tracker reporting every second; with a nightly
    snapshot of ``exposure`` yesterday unless None. Returns the device key."""
    loan = factories.loan(session, ref)
    device = factories.device(session, ident)
    device.report_interval_s = 1
    DeviceRepository(session).bind(device=device, vehicle=loan.vehicle)
    if exposure is not None:
        session.add(snapshot(loan, clock.now().date() - timedelta(days=1), exposure))
    session.flush()
    return device.id


def snapshot(loan: Loan, as_of: date, unsecured: int) -> LoanSnapshot:
    figures = dict.fromkeys(
        ("dpd", "outstanding_principal", "overdue_principal", "overdue_interest",
         "penalty_accrued", "fees_due", "payoff", "credit", "collateral_value", "ead",
         "recoverable", "ltv_bps"), 0,
    )  # fmt: skip
    return LoanSnapshot(loan_id=loan.id, as_of=as_of, bucket="M0", status="active",
                        unsecured=unsecured, over_ltv_cap=False, **figures)  # fmt: skip


def fix(device: int, seconds_ago: float, alarms: str = "", at=BEIJING) -> Fix:
    """A fix taken ``seconds_ago``. The monitor reads whole seconds and drops a second fix of
    a device in the same second: fixes published in turn are at least a second apart."""
    now = clock.now()
    return Fix(device_id=device, time=now - timedelta(seconds=seconds_ago), lat=at[0],
               lon=at[1], speed_kmh=0.0, course=0, valid=True, alarms=alarms, archived=False,
               received_at=now)  # fmt: skip


def alert_rows(url: str) -> list[Alert]:
    return in_store(url, lambda s: list(s.scalars(select(Alert).order_by(Alert.id))))


def stored(url: str, alert_key: str) -> Alert:
    return in_store(url, lambda s: s.scalars(select(Alert).where(Alert.key == alert_key)).one())


async def eventually(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Poll ``check`` (in a thread: it reads the store) until it returns something true."""
    deadline = time.monotonic() + timeout
    while not (found := await asyncio.to_thread(check)):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return found


@contextlib.asynccontextmanager
async def serving(url: str, config: Settings):
    async with (
        open_ingest(url, GatewaySettings(), BusSettings()) as ingest,
        running_monitor(ingest, config) as monitor,
    ):
        yield ingest.bus, monitor


def by_type(rows: list[Alert]) -> dict[str, Alert]:
    assert len({r.type for r in rows}) == len(rows), [r.key for r in rows]
    return {r.type: r for r in rows}


def test_power_cut_and_leaving_the_province_are_stored_and_a_restart_continues_them(store_url):
    key = in_store(store_url, lambda s: wired_loan(s, "LIVE-1", "013700000001"))
    loan = in_store(store_url, lambda s: LoanRepository(s).get_by_ref("LIVE-1"))

    async def first_run() -> dict[str, Any]:
        async with serving(store_url, settings()) as (bus, monitor):
            await bus.publish([fix(key, 3.0, at=HEBEI), fix(key, 1.0, "power_cut", at=HEBEI)])
            await eventually(lambda: len(alert_rows(store_url)) == 4, "four alerts")
            return monitor.status()

    status = asyncio.run(first_run())
    rows = by_type(alert_rows(store_url))
    assert set(rows) == {"left_region", "power_cut", "device_removed", "device_offline"}
    cut, left = rows["power_cut"], rows["left_region"]
    assert (cut.loan_id, cut.vehicle_id, cut.device_id) == (loan.id, loan.vehicle_id, key)
    assert (cut.exposure, cut.status, cut.province_code) == (EXPOSURE, "open", "13")
    assert left.evidence["permitted"] == "11" and left.started_at < cut.started_at
    assert (cut.evidence["rule"], [f["alarms"] for f in cut.evidence["fixes"]]) == (
        "power_cut", ["power_cut"]
    )  # the evidence is stored with the alert
    assert left.evidence["thresholds"] == {"left_region_h": 0.0003}
    assert rows["device_removed"].started_at == cut.started_at  # from the power cut on
    assert status["fixes_ingested"] == 2 and status["vehicles"] == 1
    assert status["alerts_open"] == 4 and status["last_advance"] is not None
    assert status["exposures_as_of"] == (clock.now().date() - timedelta(days=1)).isoformat()

    # Restart with a warm-up too short to see the car leave: only its last fix (the power cut)
    # is replayed, so the stored left_region alert must be continued, not opened again.
    async def second_run() -> tuple[dict[str, Any], dict[str, Any]]:
        async with serving(store_url, settings(warmup_h=0.0003)) as (bus, monitor):
            warmed = monitor.status()
            await asyncio.sleep(0.3)  # clock ticks over the seeded alerts: nothing changes
            assert {r.key: r.updated_at for r in alert_rows(store_url)} == {
                r.key: r.updated_at for r in rows.values()
            }
            await bus.publish([fix(key, 1.0, at=HEBEI)])  # it reports again, still away
            await eventually(lambda: stored(store_url, left.key).repeats == 1, "a repeat")
            await bus.publish([fix(key, 0.0)])  # back home
            await eventually(lambda: stored(store_url, left.key).status == "resolved", "back")
            return warmed, monitor.status()

    warmed, status = asyncio.run(second_run())
    assert warmed["warmup"]["alerts_continued"] == 4 and warmed["warmup"]["fixes"] == 1
    assert status["alerts_refused"] == 0
    after = by_type(alert_rows(store_url))
    assert {r.key for r in after.values()} == {r.key for r in rows.values()}
    assert [after[t].status for t in ("device_offline", "device_removed", "left_region")] == [
        "resolved", "resolved", "resolved"
    ]  # fmt: skip
    assert after["power_cut"].status == "open" and after["left_region"].status_by == "monitor"


def test_the_clock_raises_offline_for_a_fix_stored_before_the_start(sqlite_url):
    def stored_fix(session: Session) -> int:
        key = wired_loan(session, "LIVE-2", "013700000002", exposure=None)
        session.add(Position(device_id=key, fix_time=clock.now() - timedelta(seconds=0.5),
                             lat=BEIJING[0], lon=BEIJING[1]))  # fmt: skip
        return key

    province_index()  # built once per process (about a second): not inside the deadline
    in_store(sqlite_url, stored_fix)

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        async with serving(sqlite_url, settings()) as (_, monitor):
            started = monitor.status()
            await eventually(lambda: alert_rows(sqlite_url), "the offline alert")
            return started, monitor.status()

    started, later = asyncio.run(run())
    [offline] = alert_rows(sqlite_url)
    assert offline.type == "device_offline" and offline.exposure == 0
    assert started["alerts_open"] == 0 and started["warmup"]["fixes"] == 1
    assert later["fixes_received"] == 0 and later["alerts_open"] == 1


def test_an_unknown_device_key_reloads_the_fleet_once(sqlite_url):
    in_store(sqlite_url, lambda s: wired_loan(s, "LIVE-3", "013700000003"))

    async def run() -> dict[str, Any]:
        async with serving(sqlite_url, settings()) as (bus, monitor):
            assert monitor.status()["fleet_reloads"] == 1
            fitted = await asyncio.to_thread(
                in_store, sqlite_url, lambda s: wired_loan(s, "LIVE-4", "013700000004")
            )
            stray = await asyncio.to_thread(
                in_store, sqlite_url, lambda s: factories.device(s, "013700000005").id
            )
            await bus.publish([fix(fitted, 0.5, "power_cut")])
            await eventually(lambda: alert_rows(sqlite_url), "the new car's power cut")
            await bus.publish([fix(stray, 0.4)])
            await bus.publish([fix(stray, 0.3)])
            await eventually(lambda: monitor.status()["unbound_fixes"] == 2, "both stray fixes")
            return monitor.status()

    status = asyncio.run(run())
    [cut] = [r for r in alert_rows(sqlite_url) if r.type == "power_cut"]
    loan = in_store(sqlite_url, lambda s: LoanRepository(s).get_by_ref("LIVE-4").id)
    assert cut.loan_id == loan and cut.exposure == EXPOSURE
    assert status["fleet_reloads"] == 3  # start, the fitted device, the stray one once
    assert status["vehicles"] == 2 and status["fixes_ingested"] == 1


def test_people_decide_in_the_store_and_the_monitor_follows(sqlite_url):
    key = in_store(sqlite_url, lambda s: wired_loan(s, "LIVE-5", "013700000006"))
    config = settings(thresholds={"offline_wired_h": 1.0, "removal_silence_min_h": 1.0})

    def cuts() -> list[Alert]:
        return [r for r in alert_rows(sqlite_url) if r.type == "power_cut"]

    def decide(verb: str, row_id: int) -> None:
        when = clock.now()
        in_store(sqlite_url, lambda s: getattr(AlertRepository(s), verb)(row_id, by="agent7",
                                                                            at=when))  # fmt: skip

    async def run() -> None:
        async with serving(sqlite_url, config) as (bus, monitor):
            await bus.publish([fix(key, 3.0, "power_cut")])
            [first] = await eventually(cuts, "the first power cut")
            await asyncio.to_thread(decide, "resolve", first.id)
            await eventually(lambda: monitor.status()["alerts_open"] == 0, "the decision read")
            await bus.publish([fix(key, 2.0, "power_cut")])
            second = (await eventually(lambda: cuts()[1:], "a second power cut"))[0]
            await asyncio.to_thread(decide, "acknowledge", second.id)
            await asyncio.sleep(0.3)
            await bus.publish([fix(key, 1.0, "power_cut")])
            await eventually(lambda: cuts()[1].repeats == 1, "the repeat saved")

    asyncio.run(run())
    first, second = cuts()
    assert (first.status, first.status_by) == ("resolved", "agent7")
    assert (second.status, second.status_by, second.repeats) == ("acknowledged", "agent7", 1)


def test_the_fleet_is_the_live_loans_with_their_latest_snapshot(db_session):
    key = wired_loan(db_session, "FLEET-1", "013700000011", exposure=None)
    loan = LoanRepository(db_session).get_by_ref("FLEET-1")
    db_session.add_all([snapshot(loan, date(2026, 5, 1), 10), snapshot(loan, date(2026, 5, 2), 20)])
    loan.booked_province = "99"
    loan.borrower.home_lat = None
    closed = factories.loan(db_session, "FLEET-2")
    closed.status = "settled"
    DeviceRepository(db_session).bind(
        device=factories.device(db_session, "013700000012"), vehicle=closed.vehicle
    )
    factories.device(db_session, "013700000013")  # never fitted
    quarantined = factories.device(db_session, "013700000014", kind="wireless")
    quarantined.quarantined = True
    DeviceRepository(db_session).bind(device=quarantined, vehicle=loan.vehicle)
    db_session.flush()
    fleet = load_fleet(db_session, provinces=province_index())
    [vehicle] = [v for v in fleet.vehicles if v.loan_id == "FLEET-1"]
    assert fleet.exposures_as_of == date(2026, 5, 2) and vehicle.exposure == 20
    assert (vehicle.region, vehicle.home, vehicle.borrower_id) == (None, None, "B-FLEET-1")
    assert vehicle.product == "new-car-36" and vehicle.time_zone == "Asia/Shanghai"
    assert fleet.devices[key].vehicle_id == loan.vehicle.vin
    assert fleet.devices[key].report_interval_s == 1
    assert not {"FLEET-2"} & {v.loan_id for v in fleet.vehicles}
    assert quarantined.id not in fleet.devices


def test_recent_fixes_reach_back_to_the_last_fix_before_the_window(db_session):
    key = wired_loan(db_session, "FIXES-1", "013700000021", exposure=None)
    t0 = datetime(2026, 7, 1, tzinfo=UTC)
    db_session.add_all(
        Position(device_id=key, fix_time=t0 + timedelta(hours=h), lat=BEIJING[0], lon=BEIJING[1],
                 alarms="power_cut" if h == 5 else "")
        for h in (0, 1, 5, 6)
    )  # fmt: skip
    db_session.flush()
    batch = recent_fixes(db_session, {key: "013700000021"}, since=t0 + timedelta(hours=3))
    assert sorted(batch.time.tolist()) == [int((t0 + timedelta(hours=h)).timestamp())
                                           for h in (1, 5, 6)]  # fmt: skip
    assert set(batch.device_id.tolist()) == {"013700000021"}
    assert sorted(batch.alarms.tolist()) == ["", "", "power_cut"]


def test_a_conflicting_open_alert_is_continued_not_duplicated(sqlite_url):
    key = in_store(sqlite_url, lambda s: wired_loan(s, "LIVE-6", "013700000031"))
    config = settings(thresholds={"offline_wired_h": 1.0, "removal_silence_min_h": 1.0})

    async def run() -> dict[str, Any]:
        async with serving(sqlite_url, config) as (bus, monitor):
            # another writer stores an open power cut for the car while the monitor runs
            await asyncio.to_thread(in_store, sqlite_url, foreign_power_cut)
            await bus.publish([fix(key, 2.0, "power_cut")])
            await eventually(lambda: monitor.status()["alerts_refused"] == 1, "the refusal")
            await bus.publish([fix(key, 1.0, "power_cut")])
            await eventually(lambda: alert_rows(sqlite_url)[0].repeats == 1, "the repeat")
            return monitor.status()

    def foreign_power_cut(session: Session) -> None:
        loan = LoanRepository(session).get_by_ref("LIVE-6")
        session.add(Alert(type="power_cut", severity="critical", vehicle_id=loan.vehicle_id,
                          loan_id=loan.id, started_at=clock.now(), key="elsewhere",
                          updated_at=clock.now() - timedelta(seconds=5)))  # fmt: skip

    status = asyncio.run(run())
    [row] = alert_rows(sqlite_url)
    assert row.key == "elsewhere" and status["alerts_open"] == 1
    assert status["last_error"].startswith("alert ") and "refused" in status["last_error"]


def test_a_backlog_behind_the_clock_is_monitored_and_only_older_fixes_are_late(sqlite_url):
    key = in_store(sqlite_url, lambda s: wired_loan(s, "LIVE-7", "013700000007"))

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        async with serving(sqlite_url, settings()) as (bus, monitor):
            await bus.publish([fix(key, 30)])
            await eventually(lambda: monitor.status()["fixes_ingested"] == 1, "the first fix")
            clock = monitor.status()["last_advance"]
            await eventually(lambda: monitor.status()["last_advance"] != clock, "a clock tick")
            # A drained backlog: older than the clock, newer than what the car processed.
            await bus.publish([fix(key, 20)])
            await bus.publish([fix(key, 19)])
            await eventually(lambda: monitor.status()["fixes_ingested"] == 3, "the backlog")
            backlog = monitor.status()
            await bus.publish([fix(key, 25)])  # older than the car's last processed fix
            await eventually(lambda: monitor.status()["late_fixes"] == 1, "the late fix")
            return backlog, monitor.status()

    backlog, late = asyncio.run(run())
    assert (backlog["late_fixes"], backlog["last_late_at"]) == (0, None)
    assert late["last_late_at"] is not None and late["fixes_ingested"] == 4


def test_a_partition_continues_the_open_alerts_of_its_own_vehicles_only(store_url):
    """``PartitionAlerts`` reads the open alerts of its partition's vehicles by VIN, not
    every open alert of the book filtered afterwards."""
    from lienwatch.bus.jetstream import partition_of
    from lienwatch.bus.partitioned import PartitionAlerts, PartitionFleet, SharedFleet
    from lienwatch.store.monitoring import StoreAlertStore, StoreFleetSource

    def book(session: Session) -> list[str]:
        vins = []
        for n in range(3):
            wired_loan(session, f"PART-{n}", f"01370000004{n}", exposure=None)
            loan = LoanRepository(session).get_by_ref(f"PART-{n}")
            session.add(Alert(type="power_cut", severity="critical", vehicle_id=loan.vehicle_id,
                              loan_id=loan.id, started_at=clock.now(), key=f"key-{n}"))  # fmt: skip
            vins.append(loan.vehicle.vin)
        return vins

    vins = in_store(store_url, book)
    partitions = next(n for n in range(2, 64) if len({partition_of(v, n) for v in vins}) == 3)
    engine = make_engine(store_url)
    try:
        factory, provinces = session_factory(engine), province_index()
        shared = SharedFleet(StoreFleetSource(factory, provinces))
        for n, vin in enumerate(vins):
            fleet = PartitionFleet(shared, partition_of(vin, partitions), partitions)
            alerts = PartitionAlerts(StoreAlertStore(factory, provinces), fleet)
            assert [(a.id, a.vehicle_id) for a in alerts.open_alerts()] == [(f"key-{n}", vin)]
    finally:
        engine.dispose()


def zones_geojson(*centres: tuple[float, float]) -> str:
    """A risk-zone file: a pawnshop 0.01° square around each centre (Z0, Z1, …)."""
    features = [
        {"type": "Feature", "properties": {"category": "pawnshop", "zone_id": f"Z{n}"},
         "geometry": {"type": "Polygon", "coordinates": [[
             [lon - 0.005, lat - 0.005], [lon + 0.005, lat - 0.005], [lon + 0.005, lat + 0.005],
             [lon - 0.005, lat + 0.005], [lon - 0.005, lat - 0.005]]]}}
        for n, (lat, lon) in enumerate(centres)
    ]  # fmt: skip
    return json.dumps({"type": "FeatureCollection", "features": features})


def test_the_live_monitor_takes_risk_zones_changed_while_it_runs(sqlite_url, tmp_path):
    """``[monitor] zones_file``: the car parks where no zone is (away from its home, a known
    place); the file gains a pawnshop there; at its next fleet reload the monitor judges by
    it, and the car's dwell raises ``risk_zone_visit``."""
    spot = (39.95, 116.50)
    zones = tmp_path / "zones.geojson"
    zones.write_text(zones_geojson(), "utf-8")
    key = in_store(sqlite_url, lambda s: wired_loan(s, "ZONE-1", "013700000051"))
    config = settings(zones_file=zones, fleet_refresh_s=0.2,
                      thresholds={"risk_zone_dwell_min": 0.01, "jump_min_km": 1000})  # fmt: skip

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        async with serving(sqlite_url, config) as (bus, monitor):
            before = monitor.status()
            await bus.publish([fix(key, 4.0, at=spot)])
            await eventually(lambda: monitor.status()["fixes_ingested"] == 1, "the fix")
            zones.write_text(zones_geojson(spot), "utf-8")
            await eventually(lambda: monitor.status()["risk_zones"] == 1, "the new zones")
            await bus.publish([fix(key, 2.0, at=spot)])
            await bus.publish([fix(key, 0.0, at=spot)])
            def visits() -> list[Alert]:
                return [r for r in alert_rows(sqlite_url) if r.type == "risk_zone_visit"]

            visit = await eventually(visits, "the visit")
            assert visit[0].evidence["zone_id"] == "Z0"
            return before, monitor.status()

    before, after = asyncio.run(run())
    assert (before["risk_zones"], before["references"]) == (0, before["references"])
    assert after["references"] != before["references"] and after["last_error"] is None


def test_a_bad_zones_file_stops_the_start_and_a_bad_change_keeps_the_zones(tmp_path):
    from lienwatch.adapters.references import ReferenceFiles
    from lienwatch.tabular import InputFileError

    zones = tmp_path / "zones.geojson"
    zones.write_text('{"type": "FeatureCollection", "features": [{"properties": {}}]}')
    files = ReferenceFiles(zones, None)
    with pytest.raises(InputFileError, match=r"zones\.geojson: zones: feature 0: category None"):
        files.current()
    zones.write_text(zones_geojson(BEIJING), "utf-8")
    good = files.current()
    assert len(good.zones) == 1 and files.current() is good  # unchanged: not read again
    zones.write_text("{not json", "utf-8")
    assert files.current() is good
    assert files.error is not None and "line 1: not JSON" in files.error


def test_the_log_says_when_no_reference_file_is_configured(tmp_path, caplog):
    from lienwatch.adapters.references import ReferenceFiles

    zones = tmp_path / "zones.geojson"
    zones.write_text(zones_geojson(BEIJING), "utf-8")
    with caplog.at_level(logging.INFO, logger="lienwatch.adapters.references"):
        assert ReferenceFiles(None, None).current().zones is None
        ReferenceFiles(zones, None).current()
    first, second = (record.getMessage() for record in caplog.records)
    assert first.startswith("monitor references: none ([monitor] zones_file and regions_file")
    assert second.startswith("monitor references: version ") and str(zones) in second


def yard_geojson(name: str, centre: tuple[float, float], radius_m: int) -> str:
    """A permitted-regions file: one circle named ``name``."""
    lat, lon = centre
    return json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": name, "radius_m": radius_m},
         "geometry": {"type": "Point", "coordinates": [lon, lat]}}]})  # fmt: skip


def test_a_vehicle_is_judged_by_its_stored_permitted_area_else_its_province(sqlite_url, tmp_path):
    """``vehicles.permitted_area``: the car naming the 10 km yard around its home raises
    ``left_region`` 25 km away, still in its booked province; the car naming an area the
    regions file lacks is judged by its province (no alert there) instead of stopping the
    monitor."""
    away = (BEIJING[0] + 0.22, BEIJING[1])  # 24.5 km north, still Beijing (11)
    regions = tmp_path / "regions.geojson"
    regions.write_text(yard_geojson("beijing-yard", BEIJING, 10_000), "utf-8")

    def two_cars(session: Session) -> tuple[int, int]:
        keys = wired_loan(session, "AREA-1", "013700000061"), wired_loan(
            session, "AREA-2", "013700000062"
        )
        for ref, area in (("AREA-1", "beijing-yard"), ("AREA-2", "not-published")):
            LoanRepository(session).get_by_ref(ref).vehicle.permitted_area = area
        return keys

    yard_car, unknown_car = in_store(sqlite_url, two_cars)
    fleet = in_store(sqlite_url, lambda s: load_fleet(s, provinces=province_index()))
    assert {v.loan_id: v.area for v in fleet.vehicles} == {
        "AREA-1": "beijing-yard", "AREA-2": "not-published"
    }  # fmt: skip

    async def run() -> dict[str, Any]:
        async with serving(sqlite_url, settings(regions_file=regions)) as (bus, monitor):
            for car in (yard_car, unknown_car):
                await bus.publish([fix(car, 3.0, at=away)])
                await bus.publish([fix(car, 1.0, at=away)])
            await eventually(lambda: alert_rows(sqlite_url), "the yard car's alert")
            await eventually(lambda: monitor.status()["fixes_ingested"] == 4, "every fix")
            return monitor.status()

    status = asyncio.run(run())
    left = [r for r in alert_rows(sqlite_url) if r.type == "left_region"]
    assert [r.evidence["permitted"] for r in left] == ["beijing-yard"]
    assert left[0].device_id == yard_car and status["regions"] == 1


def test_a_publication_that_does_not_parse_is_refused_and_the_last_good_one_kept(tmp_path):
    from lienwatch.adapters.references import PublishedReferences, ReferenceFiles, publication

    zones = tmp_path / "zones.geojson"
    zones.write_text(zones_geojson(BEIJING), "utf-8")
    files = ReferenceFiles(zones, None)
    published = PublishedReferences(files)
    assert published.current() is files.current()  # nothing published: this machine's files
    _, found = publication({"zones": zones, "regions": None})
    assert found.version == files.current().version  # the same files, the same version
    zones.write_text(zones_geojson(BEIJING, HEBEI), "utf-8")
    published.offer(1, publication({"zones": zones, "regions": None})[0])
    assert len(published.current().zones) == 2 and published.error is None
    for sequence, bad in ((2, b"{not json"), (3, json.dumps({"zones": "{}"}).encode())):
        published.offer(sequence, bad)
        assert len(published.current().zones) == 2 and published.published == sequence
        assert published.error is not None and "published" in published.error


def test_regions_that_drop_a_vehicles_area_are_taken_and_it_is_judged_by_its_province(
    sqlite_url, tmp_path
):
    """One rule for a permitted area the regions lack, whenever it happens: regions changed
    while the monitor runs that no longer have a car's area are taken at the next fleet
    reload (not refused for that car), and the car is judged by its province from then on."""
    away = (BEIJING[0] + 0.22, BEIJING[1])  # 24.5 km north, still Beijing (11)
    regions = tmp_path / "regions.geojson"
    regions.write_text(yard_geojson("beijing-yard", BEIJING, 10_000), "utf-8")

    def yard_car(session: Session) -> int:
        key = wired_loan(session, "AREA-3", "013700000063")
        LoanRepository(session).get_by_ref("AREA-3").vehicle.permitted_area = "beijing-yard"
        return key

    car = in_store(sqlite_url, yard_car)

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        config = settings(regions_file=regions, fleet_refresh_s=0.2)
        async with serving(sqlite_url, config) as (bus, monitor):
            before = monitor.status()
            regions.write_text(yard_geojson("hebei-yard", HEBEI, 10_000), "utf-8")
            await eventually(lambda: monitor.status()["references"] != before["references"],
                             "the new regions")  # fmt: skip
            await bus.publish([fix(car, 3.0, at=away)])
            await bus.publish([fix(car, 1.0, at=away)])
            await eventually(lambda: monitor.status()["fixes_ingested"] == 2, "every fix")
            return before, monitor.status()

    before, after = asyncio.run(run())
    assert after["last_error"] is None and after["regions"] == before["regions"] == 1
    assert [r for r in alert_rows(sqlite_url) if r.type == "left_region"] == []


def test_changed_reference_files_are_read_and_hashed_once(tmp_path, monkeypatch):
    from lienwatch.adapters import references

    zones = tmp_path / "zones.geojson"
    zones.write_text(zones_geojson(BEIJING), "utf-8")
    calls: Counter[str] = Counter()
    for name in ("_read_bytes", "_version"):
        real = getattr(references, name)
        monkeypatch.setattr(references, name, lambda *a, _f=real, _n=name: (
            calls.update([_n]), _f(*a))[1])  # fmt: skip
    files = references.ReferenceFiles(zones, None)
    first = files.current()
    assert calls == {"_read_bytes": 1, "_version": 1}
    zones.write_text(zones_geojson(BEIJING, HEBEI), "utf-8")
    assert len(files.current().zones) == 2 and files.current().version != first.version
    assert calls == {"_read_bytes": 2, "_version": 2}  # the change read and hashed once
