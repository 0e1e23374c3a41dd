"""HTTP ingest over real HTTP on loopback (uvicorn on the gateway's loop, httpx client)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from lienwatch import clock
from lienwatch.store.db import session_factory, transaction
from lienwatch.store.tables import Device, Position
from tests.api.conftest import PHONE, TABLET, TOKEN


def stored(engine, ident: str) -> list[Position]:
    with transaction(session_factory(engine)) as session:
        query = select(Position).join(Device).where(Device.ident == ident)
        return list(session.scalars(query.order_by(Position.fix_time)))


def test_osmand_fix_is_stored_in_km_per_hour(api):
    client, engine = api
    now = int(clock.now().timestamp())
    params = {"id": PHONE, "lat": 31.23, "lon": 121.47, "timestamp": now, "speed": 10,
              "bearing": 90.4, "batt": 77, "token": TOKEN}  # fmt: skip
    response = client.get("/api/v1/ingest/osmand", params=params)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "archived": 0, "duplicates": 0, "conflicts": 0}
    old = {**params, "timestamp": "2026-01-01T08:00:00+08:00"}  # POST form, ISO time, late
    response = client.post("/api/v1/ingest/osmand", params=old)
    assert response.json() == {"accepted": 1, "archived": 1, "duplicates": 0, "conflicts": 0}
    first, latest = stored(engine, PHONE)
    assert first.fix_time == datetime(2026, 1, 1, tzinfo=UTC) and first.archived
    assert (latest.speed_kmh, latest.course, latest.lat) == (18.5, 90, 31.23)


def test_json_batch_is_all_or_nothing(api):
    client, engine = api
    auth = {"Authorization": f"Bearer {TOKEN}"}
    fixes = [{"device_id": TABLET, "time": 1_790_000_000_000 + n * 1000, "lat": 30.0,
              "lon": 120.0, "speed_kmh": 50, "alarms": ["sos"] if n == 2 else []}
             for n in range(3)]  # fmt: skip
    refused = [*fixes, {"device_id": "013900000001", "time": 1_790_000_000, "lat": 1, "lon": 1}]
    response = client.post("/api/v1/ingest/positions", json={"positions": refused}, headers=auth)
    assert response.status_code == 403 and "013900000001" in response.text  # a JT/T 808 device
    assert stored(engine, TABLET) == []
    response = client.post("/api/v1/ingest/positions", json={"positions": fixes}, headers=auth)
    assert response.json() == {"accepted": 3, "archived": 3, "duplicates": 0, "conflicts": 0}
    assert [p.alarms for p in stored(engine, TABLET)] == ["", "", "sos"]


@pytest.mark.parametrize(
    ("request_args", "status", "names"),
    [
        ({"params": {"id": PHONE, "lat": 1, "lon": 1, "timestamp": 1}}, 401, "token"),
        ({"params": {"id": PHONE, "lat": 1, "lon": 1, "timestamp": 1, "token": "wrong" * 4}},
         401, "token"),
        ({"params": {"id": PHONE, "lat": 91, "lon": 1, "timestamp": 1, "token": TOKEN}},
         422, "lat"),
        ({"params": {"id": PHONE, "lat": 1, "lon": 1, "timestamp": "soon", "token": TOKEN}},
         422, "timestamp"),
        ({"params": {"id": "15999999999", "lat": 1, "lon": 1, "timestamp": 1, "token": TOKEN}},
         403, "15999999999"),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_naming_the_field(api, request_args, status, names):
    client, _ = api
    response = client.get("/api/v1/ingest/osmand", **request_args)
    assert response.status_code == status
    assert names in response.text


def test_store_failure_is_503_so_the_client_retries(api):
    client, engine = api
    params = {"id": PHONE, "lat": 1, "lon": 1, "timestamp": 1_700_000_000, "token": TOKEN}
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE positions RENAME TO positions_away"))
    try:
        response = client.get("/api/v1/ingest/osmand", params=params)
    finally:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE positions_away RENAME TO positions"))
    assert response.status_code == 503
    assert client.get("/api/v1/ingest/osmand", params=params).status_code == 200  # the retry
