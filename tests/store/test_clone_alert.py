"""A cloned tracker as a collateral alert on the store: one open alert per vehicle, repeated
while open, followed up by the engine's collateral-alert ladder (issue 11)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from lienwatch.store.tables import Alert, Position, Trigger
from lienwatch.store.telematics import StoreFixWriter, raise_clone_alert
from lienwatch.telematics.fixes import Fix
from tests import factories
from tests.services.test_followup_engine import MORNING, missed, service, user  # noqa: F401


def test_a_clone_alert_is_deduplicated_while_open_and_followed_up(db_session, missed):  # noqa: F811
    device = factories.device(db_session, "013911112222")
    device.vehicle_id = missed.vehicle_id
    db_session.add(Position(device_id=device.id, fix_time=MORNING - timedelta(hours=1),
                            lat=39.9, lon=116.4))  # fmt: skip
    user(db_session, "ann")
    engine, _ = service(db_session)
    engine.tick(at=MORNING)
    at = MORNING + timedelta(minutes=5)
    first = raise_clone_alert(db_session, device.id, at=at, addresses=["10.0.0.1:1", "10.0.0.2:2"])
    again = raise_clone_alert(db_session, device.id, at=at, addresses=["10.0.0.3:3"])
    assert first is again and first.repeats == 1 and first.loan_id == missed.id
    assert first.evidence["addresses"] == ["10.0.0.1:1", "10.0.0.2:2", "10.0.0.3:3"]
    assert (first.lat, first.lon) == (39.9, 116.4)
    engine.tick(at=at + timedelta(minutes=1))
    trigger = db_session.scalar(select(Trigger).where(Trigger.alert_id == first.id))
    # a cloned tracker on a delinquent loan: the urgent ladder (an agent call within the hour)
    assert (trigger.kind, trigger.ladder) == ("collateral_alert", "device-removed-delinquent")
    first.status = "resolved"
    db_session.flush()
    later = raise_clone_alert(db_session, device.id, at=at + timedelta(days=1), addresses=["x"])
    assert later is not first and later.repeats == 0
    assert len(db_session.scalars(select(Alert).where(Alert.type == "device_cloned")).all()) == 2


def test_an_unbound_device_raises_no_alert(db_session):
    device = factories.device(db_session, "013911113333")
    assert raise_clone_alert(db_session, device.id, at=MORNING, addresses=["a"]) is None


def test_a_fix_contradicting_the_stored_one_is_a_clone_too(db_session, missed):  # noqa: F811
    """Two sources reporting for one device (a clone posting while the device is quiet, or
    over HTTP and TCP) show as a fix of the same time at another position."""
    device = factories.device(db_session, "013911114444")
    device.vehicle_id = missed.vehicle_id
    db_session.flush()
    factory = sessionmaker(bind=db_session.connection(), join_transaction_mode="create_savepoint")
    at = MORNING - timedelta(hours=1)
    real, forged = (Fix(device.id, at, lat, 116.4, 0.0, 0, True, "", False, MORNING)
                    for lat in (39.9, 22.5))  # fmt: skip
    writer = StoreFixWriter(factory)
    assert (writer.write([real]), writer.write([real])) == (1, 0)  # a repeat is no conflict
    assert db_session.scalars(select(Alert)).all() == []
    writer.write([forged])
    [alert] = db_session.scalars(select(Alert).where(Alert.type == "device_cloned"))
    assert alert.evidence["reasons"] == ["conflicting_fix"] and alert.loan_id == missed.id
    raise_clone_alert(db_session, device.id, at=MORNING, addresses=["10.0.0.9:9"])
    assert alert.evidence["reasons"] == ["conflicting_fix", "second_session"]
