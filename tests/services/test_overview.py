"""The book's overview: devices reporting and silent as of a day, counts of the book."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from lienwatch.services.reads.overview import build_overview
from lienwatch.store.tables import Position
from tests import factories

AS_OF = date(2026, 3, 1)
MIDNIGHT = datetime(2026, 3, 1, tzinfo=UTC)


def test_devices_reporting_and_silent_by_their_last_fix_before_the_day(db_session):
    factories.loan(db_session, "L1")
    fresh, stale, quiet, _never, later = (factories.device(db_session, f"1380000000{i}")
                                          for i in range(5))  # fmt: skip
    ago = {fresh: [30, 5], stale: [100, 40], quiet: [200, 73], later: [80, -1]}  # hours
    for device, hours in ago.items():
        for h in hours:
            db_session.add(Position(device_id=device.id, fix_time=MIDNIGHT - timedelta(hours=h),
                                    lat=39.9, lon=116.4))  # fmt: skip
    db_session.flush()
    overview = build_overview(db_session, as_of=AS_OF)
    # fresh: 5 h ago; stale: 40 h (neither); quiet: 73 h; never: no fix; later: its fix at
    # 01:00 on the day does not count, its last before is 80 h ago
    assert overview.devices_reporting_24h == 1
    assert overview.devices_silent_72h == 3
    assert overview.positions == 8
    assert overview.vehicles == 1 and overview.principal_disbursed == 10_000_000
    assert overview.devices == {"jt808/wired": 5}
