"""HTTP ingest against hostile requests, over real HTTP on loopback (issue 11, findings 3, 5)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import time
from datetime import UTC, date, datetime

import pytest
from fastapi import Request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from lienwatch.config import GatewaySettings
from lienwatch.runtime import api_app, serving_http
from lienwatch.store.db import session_factory, transaction
from lienwatch.store.tables import Device, PositionConflict
from tests.api.conftest import DIGEST_PARTNER_TOKEN, PHONE, TABLET, TOKEN
from tests.api.test_ingest import stored

POSITIONS = "/api/v1/ingest/positions"
OSMAND = "/api/v1/ingest/osmand"


def raw_request(client, head: str, timeout: float = 5) -> bytes:
    """Send the request ``head`` alone on a fresh socket; the response, once the server closes."""
    address = (client.base_url.host, client.base_url.port)
    with socket.create_connection(address, timeout=timeout) as s:
        s.sendall(f"{head}Connection: close\n\n".replace("\n", "\r\n").encode())
        response = b""
        while data := s.recv(65536):
            response += data
        return response


def test_the_token_is_checked_before_the_body_is_read(api):
    """No token: 401 though the announced body never comes (it used to be awaited, then
    parsed: 50 MB took 1 s and 300 MB of memory before the 401)."""
    client, _ = api
    head = f"POST {POSITIONS} HTTP/1.1\nHost: x\nContent-Length: 900000\n"
    assert raw_request(client, head).startswith(b"HTTP/1.1 401")


def test_a_body_announced_over_the_limit_is_refused_before_it_is_sent(api):
    client, _ = api
    head = (f"POST {POSITIONS} HTTP/1.1\nHost: x\nAuthorization: Bearer {TOKEN}\n"
            f"Content-Length: 50000000\n")  # fmt: skip
    response = raw_request(client, head)
    assert response.startswith(b"HTTP/1.1 413") and b"body: more than" in response


def test_a_chunked_body_is_cut_off_at_the_limit(api):
    client, _ = api
    chunks = (b"x" * 65536 for _ in range(40))  # 2.5 MB without a Content-Length
    response = client.post(POSITIONS, content=chunks, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 413


def test_a_bad_batch_is_answered_with_a_short_excerpt(api):
    client, _ = api
    fix = {"device_id": "x" * 900_000, "time": 1_790_000_000, "lat": 1, "lon": 1}
    response = client.post(POSITIONS, json={"positions": [fix]},
                           headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("positions.0.device_id: ")
    assert len(response.content) < 300


def test_the_url_token_is_for_osmand_clients_only(api):
    client, _ = api
    fix = {"device_id": TABLET, "time": 1_790_000_000, "lat": 1, "lon": 1}
    response = client.post(POSITIONS, params={"token": TOKEN}, json={"positions": [fix]})
    assert response.status_code == 401


OSMAND_CASES = [
    {"timestamp": "99999999999999999999"}, {"timestamp": "1" * 24},
    {"timestamp": "0001-01-01T00:00:00+14:00"}, {"timestamp": "9999-12-31T23:59:59-14:00"},
    {"lat": "nan"}, {"lon": "inf"}, {"speed": "nan"}, {"bearing": "-inf"}, {"batt": "nan"},
]  # fmt: skip
NAN, INF = float("nan"), float("inf")  # json.dumps writes them as NaN and Infinity
BATCH_CASES = [
    {"time": INF}, {"time": 1e300}, {"time": 1e20}, {"time": "99999999999999999999"},
    {"time": NAN}, {"time": True}, {"time": [1]}, {"lat": NAN}, {"lat": INF},
    {"speed_kmh": NAN},
]  # fmt: skip


@pytest.mark.parametrize("change", OSMAND_CASES)
def test_bad_osmand_values_are_a_422_naming_the_field(api, change):
    client, _ = api
    params = {"id": PHONE, "lat": 1, "lon": 1, "timestamp": 1_790_000_000, "token": TOKEN}
    response = client.get(OSMAND, params={**params, **change})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith(next(iter(change)))


@pytest.mark.parametrize("change", BATCH_CASES)
def test_bad_batch_values_are_a_422_naming_the_field(api, change):
    client, _ = api
    fix = {"device_id": TABLET, "time": 1_790_000_000, "lat": 1, "lon": 1, **change}
    body = json.dumps({"positions": [fix]})
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    response = client.post(POSITIONS, content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith(f"positions.0.{next(iter(change))}")


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
    st.sampled_from(["NaN", "Infinity", "-1e999", "0001-01-01T00:00:00+14:00", "1" * 30]),
)  # fmt: skip
FIX_FIELDS = ["device_id", "time", "lat", "lon", "speed_kmh", "course", "valid", "alarms"]


@given(
    params=st.dictionaries(
        st.sampled_from(["id", "lat", "lon", "timestamp", "speed", "bearing", "batt", "valid"]),
        SCALARS.map(str),
    ),
    fixes=st.lists(st.dictionaries(st.sampled_from(FIX_FIELDS), SCALARS), max_size=3),
)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_fuzzed_ingest_requests_never_get_a_5xx(api, params, fixes):
    client, _ = api
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for response in (
        client.get(OSMAND, params={**params, "token": TOKEN}),
        client.post(POSITIONS, content=json.dumps({"positions": fixes}), headers=headers),
    ):
        assert response.status_code < 500, response.text
        assert response.is_success or isinstance(response.json()["error"]["message"], str)


@pytest.mark.parametrize(
    ("path", "request_args", "field"),
    [(OSMAND, {"params": {"id": PHONE, "lat": 1, "lon": 1, "timestamp": "2099-01-01T00:00:00Z",
                          "token": TOKEN}}, "timestamp"),
     (POSITIONS, {"json": {"positions": [
         {"device_id": TABLET, "time": 1_790_000_000, "lat": 1, "lon": 1},
         {"device_id": TABLET, "time": "9999-12-31T00:00:00Z", "lat": 1, "lon": 1}]},
      "headers": {"Authorization": f"Bearer {TOKEN}"}}, "positions.1.time"),
     (POSITIONS, {"json": {"positions": [
         {"device_id": TABLET, "time": 1_790_000_000, "lat": 1, "lon": 1, "speed_kmh": 5000}]},
      "headers": {"Authorization": f"Bearer {TOKEN}"}}, "positions.0.speed_kmh")],
)  # fmt: skip
def test_future_fixes_and_impossible_speeds_are_refused_naming_the_field(
    api, path, request_args, field
):
    client, engine = api
    before = len(stored(engine, TABLET)) + len(stored(engine, PHONE))
    response = client.post(path, **request_args)
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith(f"{field}: ")
    assert len(stored(engine, TABLET)) + len(stored(engine, PHONE)) == before


def test_duplicates_and_conflicts_are_answered_apart_and_conflicts_kept(api):
    """Three identical fixes used to be answered ``accepted: 3`` while one was stored."""
    client, engine = api
    fix = {"device_id": TABLET, "time": "2026-11-02T08:00:00Z", "lat": 30.0, "lon": 120.0}
    moved = {**fix, "lat": 31.0}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response = client.post(POSITIONS, json={"positions": [fix, fix, fix]}, headers=auth)
    assert response.json() == {"accepted": 1, "archived": 1, "duplicates": 2, "conflicts": 0}
    response = client.post(POSITIONS, json={"positions": [fix, moved]}, headers=auth)
    assert response.json() == {"accepted": 0, "archived": 0, "duplicates": 1, "conflicts": 1}
    at = datetime(2026, 11, 2, 8, tzinfo=UTC)
    assert [p.lat for p in stored(engine, TABLET) if p.fix_time == at] == [30.0]
    with transaction(session_factory(engine)) as session:
        kept = session.execute(select(PositionConflict.lat, PositionConflict.stored_lat)).all()
    assert kept == [(31.0, 30.0)]


async def slow_clients(port: int, count: int, *, body: bool) -> list[float]:
    """Open ``count`` connections that send a request (head, or head then body) a few bytes
    every 0.1 s; how long each stayed open (up to 5 s)."""

    async def one() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
        data = head + b"\r\n" + b"x" * 1000 if body else head + b"X-Slow: " + b"y" * 1000
        start = len(head) + 2 if body else 0
        if start:
            writer.write(data[:start])
        for at in range(start, len(data), 10):
            if reader.at_eof() or writer.is_closing() or time.monotonic() - started > 5:
                break
            writer.write(data[at : at + 10])
            with contextlib.suppress(TimeoutError, ConnectionError):
                if await asyncio.wait_for(reader.read(1024), 0.1) == b"":
                    break
        writer.close()
        return time.monotonic() - started

    return await asyncio.gather(*(one() for _ in range(count)))


@pytest.mark.parametrize("body", [False, True])
def test_slow_clients_are_cut_off(body):
    """61 slowloris connections were all still open after 40 s."""
    limits = GatewaySettings(http_header_timeout_s=0.5, http_body_timeout_s=0.5)
    app = api_app("slow", limits)

    @app.post("/echo")
    async def echo(request: Request) -> int:
        return len(await request.body())

    async def run() -> list[float]:
        async with serving_http(app, "127.0.0.1", 0, limits) as port:
            return await slow_clients(port, 61, body=body)

    assert max(asyncio.run(run())) < 2


def test_a_partner_token_may_be_configured_as_its_digest(api):
    """The configuration need not hold the token (``sha256:<hex>``); sending the digest
    itself is not the token."""
    client, _ = api
    auth = {"Authorization": f"Bearer {DIGEST_PARTNER_TOKEN}"}
    fix = {"device_id": TABLET, "time": "2026-11-03T08:00:00Z", "lat": 30.0, "lon": 120.0}
    assert client.post(POSITIONS, json={"positions": [fix]}, headers=auth).status_code == 200
    digest = hashlib.sha256(DIGEST_PARTNER_TOKEN.encode()).hexdigest()
    for sent in (digest, f"sha256:{digest}"):
        response = client.post(POSITIONS, json={"positions": [fix]},
                               headers={"Authorization": f"Bearer {sent}"})  # fmt: skip
        assert response.status_code == 401


def test_an_oversized_batch_is_refused_by_its_count(api):
    client, _ = api
    fix = {"device_id": TABLET, "time": 1_790_000_000, "lat": 1, "lon": 1}
    response = client.post(POSITIONS, json={"positions": [fix] * 1001},
                           headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert response.status_code == 422
    assert response.json() == {"error": {"code": "invalid", "field": "positions",
                                         "message": "positions: 1001 fixes, at most 1000"}}


def test_a_device_tied_to_a_partner_takes_positions_from_it_alone(api):
    client, engine = api
    with engine.begin() as connection:
        connection.execute(update(Device).where(Device.ident == PHONE).values(partner="zeta"))
    try:
        params = {"id": PHONE, "lat": 1, "lon": 1, "timestamp": "2026-11-04T08:00:00Z"}
        refused = client.get(OSMAND, params={**params, "token": TOKEN})  # acme's token
        taken = client.get(OSMAND, params={**params, "token": DIGEST_PARTNER_TOKEN})  # zeta's
    finally:
        with engine.begin() as connection:
            connection.execute(update(Device).where(Device.ident == PHONE).values(partner=None))
    assert refused.status_code == 403 and PHONE in refused.json()["error"]["message"]
    assert taken.status_code == 200


def test_connections_beyond_the_limit_are_answered_503():
    limits = GatewaySettings(http_max_connections=2)
    app = api_app("busy", limits)

    @app.get("/ping")
    async def ping() -> str:
        return "pong"

    async def run() -> bytes:
        async with serving_http(app, "127.0.0.1", 0, limits) as port:
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
            for _, held_writer in [*held, (reader, writer)]:
                held_writer.close()
            return answer

    assert asyncio.run(run()).startswith(b"HTTP/1.1 503")


def fit(engine, ident: str, day: date | None) -> None:
    with transaction(session_factory(engine)) as session:
        session.execute(update(Device).where(Device.ident == ident).values(fitted_on=day))


def test_fixes_dated_before_the_device_was_fitted_are_refused(api):
    """A device replaying a history older than its fitting (or whose clock was reset) used to
    have those fixes stored as positions."""
    client, engine = api
    fit(engine, TABLET, date(2026, 11, 5))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    fix = {"device_id": TABLET, "time": "2026-11-04T10:00:00Z", "lat": 30.0, "lon": 120.0}
    early = {**fix, "time": "2026-11-04T09:59:59Z"}
    try:  # 2026-11-04T10:00Z is 11-05 00:00 at UTC+14: the fitting day somewhere, so taken
        response = client.post(POSITIONS, json={"positions": [fix, early]}, headers=auth)
        assert response.status_code == 422
        message = response.json()["error"]["message"]
        assert message.startswith("positions.1.time: 2026-11-04T09:59:59")
        assert "before the device was fitted (2026-11-05)" in message
        response = client.post(POSITIONS, json={"positions": [fix]}, headers=auth)
        assert response.json()["accepted"] == 1
    finally:
        fit(engine, TABLET, None)
