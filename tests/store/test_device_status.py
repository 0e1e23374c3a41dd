"""Device statuses from sessions and last fixes, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from lienwatch.store.repositories import PositionRepository
from lienwatch.store.tables import Device
from lienwatch.store.telematics import refresh_device_statuses
from tests import factories

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def test_statuses_follow_sessions_and_last_fixes(db_session):
    fresh = factories.device(db_session, "013900000001")
    stale = factories.device(db_session, "013900000002")
    silent = factories.device(db_session, "013900000003")
    connected = factories.device(db_session, "013900000004")
    for device in (fresh, stale, silent, connected):
        device.report_interval_s = 3600
    fixes = [
        {"device_id": fresh.id, "fix_time": NOW - timedelta(minutes=30), "lat": 31.0, "lon": 121.0},
        {"device_id": stale.id, "fix_time": NOW - timedelta(hours=5), "lat": 31.0, "lon": 121.0},
        {"device_id": connected.id, "fix_time": NOW - timedelta(days=3), "lat": 31.0, "lon": 121.0},
    ]
    PositionRepository(db_session).add_many(fixes)
    db_session.flush()

    counts = refresh_device_statuses(db_session, now=NOW, connected={connected.id})
    assert counts == {"online": 2, "offline": 1, "unknown": 1}
    db_session.expire_all()
    rows = {
        d.ident: (d.status, d.last_fix_at)
        for d in db_session.scalars(select(Device).order_by(Device.ident))
    }
    assert rows["013900000001"] == ("online", NOW - timedelta(minutes=30))
    assert rows["013900000002"] == ("offline", NOW - timedelta(hours=5))  # > 2 intervals
    assert rows["013900000003"] == ("unknown", None)  # never reported
    assert rows["013900000004"][0] == "online"  # a session counts even without a fresh fix

    # Two hours later the fresh device has gone quiet too, and the session has ended.
    later = refresh_device_statuses(db_session, now=NOW + timedelta(hours=2), connected=set())
    assert later == {"offline": 3, "unknown": 1}
