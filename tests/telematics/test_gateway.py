"""The live gateway on loopback, driven by simulated devices, into a real store (both backends)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select, text, update

from lienwatch.config import GatewaySettings
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Device, Position
from lienwatch.telematics.protocols import Jt808Decoder, Message, gt06, jt808
from lienwatch.telematics.protocols.alarms import ProtocolConfigError
from lienwatch.telematics.simulator import PlayOptions, play
from tests.telematics.support import T0, add_devices, live_gateway, make_track, new_ident
from tests.telematics.test_jt808 import ITEM_E6_ON, TAMPER_BIT_16


def stored(engine: Engine, idents: list[str]) -> list[Position]:
    with transaction(session_factory(engine)) as session:
        query = (
            select(Position)
            .join(Device, Device.id == Position.device_id)
            .where(Device.ident.in_(idents))
            .order_by(Device.ident, Position.fix_time)
        )
        return list(session.scalars(query))


def devices(engine: Engine, idents: list[str]) -> list[Device]:
    with transaction(session_factory(engine)) as session:
        query = select(Device).where(Device.ident.in_(idents)).order_by(Device.ident)
        return list(session.scalars(query))


def test_simulated_devices_are_stored_once_in_both_protocols(live, engine):
    jt_idents = add_devices(engine, "jt808", 3)
    gt_idents = add_devices(engine, "gt06", 3)
    jt_tracks = [make_track(i, 30, alarm_at=7) for i in jt_idents]
    gt_tracks = [make_track(i, 30, alarm_at=7) for i in gt_idents]
    with live() as gateway:

        jt_options = PlayOptions(batch=4, window=3, heartbeat_every=3)

        async def drive() -> tuple:
            return await asyncio.gather(
                play(jt_tracks, "jt808", "127.0.0.1", gateway.port("jt808"), jt_options),
                play(gt_tracks, "gt06", "127.0.0.1", gateway.port("gt06"),
                     PlayOptions(window=2, heartbeat_every=5)),
            )  # fmt: skip

        for report in asyncio.run(drive()):
            assert report.errors == 0, [d.errors for d in report.devices]
            assert report.positions == report.acked_positions == 90
        # The same tracks again (a device resending, with the code it was issued):
        # acknowledged, stored once.
        again = asyncio.run(
            play(jt_tracks, "jt808", "127.0.0.1", gateway.port("jt808"),
                 PlayOptions(auth_codes=jt_options.auth_codes))
        )  # fmt: skip
        assert again.acked_positions == 90
        assert gateway.ingest.bus.stats.new == 180

    rows = stored(engine, jt_idents + gt_idents)
    assert len(rows) == 180
    first = rows[0]
    assert first.fix_time == datetime.fromtimestamp(T0, UTC)
    assert (round(first.lat, 6), round(first.lon, 6), first.course) == (31.2, 121.4, 45)
    assert [r.alarms for r in rows].count("power_cut") == 6
    assert all(r.archived for r in rows)  # fixes of 2026-11-01 received much later are late
    for device in devices(engine, jt_idents + gt_idents):
        assert device.status == "offline"  # sessions ended
        assert device.last_fix_at == datetime.fromtimestamp(T0 + 29 * 60, UTC)
        assert (device.auth_code is not None) == (device.protocol == "jt808")


def test_unknown_devices_are_refused_or_quarantined(live, engine):
    strangers = [new_ident("gt06"), new_ident("jt808")]
    with live(unknown_devices="reject") as gateway:
        refused = asyncio.run(play([make_track(strangers[0], 5)], "gt06", "127.0.0.1",
                                   gateway.port("gt06"), PlayOptions()))  # fmt: skip
        assert refused.acked_positions == 0 and refused.errors == 1
        assert gateway.gateway.stats.refused_devices == 1
    assert devices(engine, strangers) == []

    with live(unknown_devices="quarantine") as gateway:
        for ident, protocol in zip(strangers, ("gt06", "jt808"), strict=True):
            report = asyncio.run(play([make_track(ident, 5)], protocol, "127.0.0.1",
                                      gateway.port(protocol), PlayOptions()))  # fmt: skip
            assert report.errors == 0 and report.acked_positions == 5
    quarantined = devices(engine, strangers)
    assert [(d.quarantined, d.vehicle_id) for d in quarantined] == [(True, None)] * 2
    assert len(stored(engine, strangers)) == 10


def frame(msg_id: int, phone: str, serial: int, body: bytes = b"") -> bytes:
    return jt808.encode_frame(msg_id, phone, serial, body)


def location(phone: str, serial: int, minute: int) -> bytes:
    report = jt808.LocationReport(time=datetime.fromtimestamp(T0 + 60 * minute, UTC),
                                  lat=30.5, lon=114.3)  # fmt: skip
    return frame(jt808.LOCATION, phone, serial, jt808.encode_location_body(report))


def replies_until_closed(sock: socket.socket) -> list[Message]:
    """Every reply the server sends until it closes the connection."""
    decoder, replies = Jt808Decoder(), []
    sock.settimeout(10)
    while data := sock.recv(65536):
        replies += [e for e in decoder.feed(data) if isinstance(e, Message)]
    return replies


def results(replies: list[Message]) -> list[tuple[int, int]]:
    return [(r.extras["reply_serial"], r.extras["result"]) for r in replies]


def test_positions_need_a_valid_auth_code(live, engine):
    phone = add_devices(engine, "jt808", 1)[0]
    with live() as gateway, socket.create_connection(("127.0.0.1", gateway.port("jt808"))) as s:
        s.sendall(location(phone, 1, 0)  # before authentication: refused (result 1)
                  + frame(jt808.AUTH, phone, 2, jt808.encode_auth_body("forged")))  # fmt: skip
        assert results(replies_until_closed(s)) == [(1, 1), (2, 1)]
    assert stored(engine, [phone]) == []


def test_no_ack_when_the_store_fails(tmp_path):
    url = f"sqlite:///{tmp_path / 'broken.sqlite3'}"  # its own store: the test breaks a table
    engine = make_engine(url)
    migrate.upgrade(engine)
    phone = add_devices(engine, "jt808", 1)[0]
    with (
        live_gateway(url) as gateway,
        socket.create_connection(("127.0.0.1", gateway.port("jt808"))) as s,
    ):
        s.sendall(frame(jt808.REGISTER, phone, 1, jt808.encode_register_body(
            jt808.Registration(44, 300, "LW", "M", "T1", 1, "粤B1"), edition="2013")))  # fmt: skip
        decoder = Jt808Decoder()
        s.settimeout(10)
        (registered,) = decoder.feed(s.recv(4096))
        code = registered.extras["auth_code"]
        s.sendall(frame(jt808.AUTH, phone, 2, jt808.encode_auth_body(code)))
        assert [e.extras["result"] for e in decoder.feed(s.recv(4096))] == [0]
        with engine.begin() as connection:  # the store breaks: nothing can be made durable
            connection.execute(text("ALTER TABLE positions RENAME TO positions_away"))
        try:
            s.sendall(location(phone, 3, 0))
            assert replies_until_closed(s) == []  # closed without acknowledging serial 3
        finally:
            with engine.begin() as connection:
                connection.execute(text("ALTER TABLE positions_away RENAME TO positions"))
        assert gateway.gateway.stats.publish_failures == 1
    assert stored(engine, [phone]) == []
    engine.dispose()


def test_connection_limits(live, engine):
    phone = add_devices(engine, "jt808", 1)[0]
    settings = {"require_auth": False, "max_frame_bytes": 256, "max_junk_bytes": 256,
                "idle_timeout_s": 0.3, "max_messages_per_s": 40, "burst_messages": 5}  # fmt: skip
    with live(**settings) as gateway:
        address = ("127.0.0.1", gateway.port("jt808"))
        with socket.create_connection(address) as s:  # a frame that never ends
            s.sendall(b"\x7e" + b"\x01" * 300)
            assert replies_until_closed(s) == []
        started = time.monotonic()  # before connecting: the gateway's clock starts at accept
        with socket.create_connection(address) as s:  # silence
            assert replies_until_closed(s) == []
            assert time.monotonic() - started >= 0.3
        with socket.create_connection(address) as s:  # a flood is slowed, not dropped
            decoder = Jt808Decoder()
            s.sendall(b"".join(location(phone, n, n) for n in range(25)))
            got = 0
            while got < 25:
                got += len(decoder.feed(s.recv(65536)))
            started = time.monotonic()
            s.sendall(location(phone, 25, 25))  # read only after (25 - 5 burst) / 40 = 0.5 s
            assert len(decoder.feed(s.recv(65536))) == 1
            assert time.monotonic() - started >= 0.4
    closed = gateway.gateway.stats.closed
    assert closed["junk"] == 1 and closed["idle timeout"] >= 1
    assert len(stored(engine, [phone])) == 26


def test_a_2019_terminal_is_answered_in_the_2019_form(live, engine):
    phone = add_devices(engine, "jt808", 1)[0]
    registration = jt808.Registration(44, 300, "LW", "M-2019", "T2019", 1, "粤B2")
    body = jt808.encode_register_body(registration, edition="2019")
    with live() as gateway, socket.create_connection(("127.0.0.1", gateway.port("jt808"))) as s:
        s.settimeout(10)
        s.sendall(jt808.encode_frame(jt808.REGISTER, phone, 1, body, version=1))
        decoder = Jt808Decoder()
        raw = s.recv(4096)
        (registered,) = decoder.feed(raw)
        code = registered.extras["auth_code"]
        auth = jt808.encode_auth_body(code, version=1, imei="868120145233604")
        report = jt808.LocationReport(datetime.fromtimestamp(T0, UTC), 30.5, 114.3)
        s.sendall(jt808.encode_frame(jt808.AUTH, phone, 2, auth, version=1)
                  + jt808.encode_frame(jt808.LOCATION, phone, 3,
                                       jt808.encode_location_body(report), version=1))  # fmt: skip
        replies = []
        while len(replies) < 2:
            raw += (data := s.recv(4096))
            replies += decoder.feed(data)
    frames = [jt808.unescape(f) for f in raw.strip(b"\x7e").split(b"\x7e\x7e")]
    assert [jt808.parse_header(f).version for f in frames] == [1, 1, 1]
    assert registered.kind == "register_response" and registered.extras["result"] == 0
    assert results(replies) == [(2, 0), (3, 0)]
    assert len(stored(engine, [phone])) == 1


def gt06_location(serial: int, minute: int) -> bytes:
    fix = gt06.Gt06Fix(time=datetime.fromtimestamp(T0 + 60 * minute, UTC), lat=31.2, lon=121.4)
    return gt06.encode_location(serial, fix)


def corrupt_crc(frame: bytes) -> bytes:
    return frame[:-4] + bytes([frame[-4] ^ 0xFF]) + frame[-3:]


def test_a_device_models_profile_applies_once_it_is_identified(live, engine):
    """A model configured to tolerate bad CRCs (firmware that computes them wrongly) gets
    its frames decoded after login; the same frames from another model are rejected."""
    tolerant, strict = add_devices(engine, "gt06", 2)
    with transaction(session_factory(engine)) as session:
        session.execute(update(Device).where(Device.ident == tolerant).values(model="XY-9"))
    models = {"XY-9": {"accept_bad_checksum": True}}
    with live(models=models) as gateway:
        for ident in (tolerant, strict):
            with socket.create_connection(("127.0.0.1", gateway.port("gt06"))) as s:
                s.sendall(gt06.encode_login(ident, 1))
                s.settimeout(10)
                assert s.recv(64)  # the login ACK: identified
                s.sendall(corrupt_crc(gt06_location(2, 0)) + gt06_location(3, 1))
                time.sleep(0.5)
    assert [p.fix_time.minute for p in stored(engine, [tolerant])] == [0, 1]
    assert [p.fix_time.minute for p in stored(engine, [strict])] == [1]


def test_a_bad_model_profile_is_refused_naming_the_key(store_url):
    settings = GatewaySettings(models={"XY-9": {"utc_offset": "+99"}})
    with (
        pytest.raises(ProtocolConfigError, match=r"gateway\.models\.XY-9: .*utc_offset"),
        live_gateway(store_url, settings),
    ):
        pass


def storm(live, engine: Engine, protocol: str, method: str) -> tuple[list[Device], list[dict]]:
    """Twenty ``protocol`` devices connecting at once (a reconnection storm in small), each
    sending 3 fixes; the devices afterwards, and each call of the gateway's device directory
    ``method`` (its argument)."""
    idents = add_devices(engine, protocol, 20)
    writes: list[dict] = []
    with live() as gateway:
        directory = gateway.gateway.registry.directory
        write = getattr(directory, method)
        setattr(directory, method, lambda items: (writes.append(dict(items)), write(items)))
        tracks = [make_track(ident, 3) for ident in idents]
        report = asyncio.run(play(tracks, protocol, "127.0.0.1", gateway.port(protocol),
                                  PlayOptions(window=1)))  # fmt: skip
        assert report.errors == 0 and report.acked_positions == 60
    return devices(engine, idents), writes


def test_sessions_opened_and_closed_together_are_written_together(live, engine):
    """A few status writes, not one commit per login: each device offline after."""
    after, writes = storm(live, engine, "gt06", "set_statuses")
    assert all(device.status == "offline" for device in after)
    ids = {device.id for device in after}
    opened = {d for batch in writes for d, status in batch.items() if status == "online"}
    closed = {d for batch in writes for d, status in batch.items() if status == "offline"}
    assert closed == ids and opened <= ids  # a session opened and closed in one spell: its last
    assert len(writes) < len(ids)


def test_stopping_waits_for_the_session_statuses_being_written(live, engine):
    """A session's end noted behind a slow status write (a busy store) is written before
    ``stop`` returns: a stopped gateway leaves no device online."""
    (ident,) = add_devices(engine, "gt06", 1)
    with live() as gateway:
        directory = gateway.gateway.registry.directory
        write = directory.set_statuses
        directory.set_statuses = lambda items: (time.sleep(0.5), write(items))
        report = asyncio.run(play([make_track(ident, 1)], "gt06", "127.0.0.1",
                                  gateway.port("gt06"), PlayOptions()))  # fmt: skip
        assert report.acked_positions == 1
        deadline = time.monotonic() + 10
        while gateway.gateway.stats.open_connections and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # the session's end now waits behind the slow write of its start

        async def stop_and_read() -> str:
            await gateway.gateway.stop()
            return await asyncio.to_thread(lambda: devices(engine, [ident])[0].status)

        assert gateway.call(stop_and_read()) == "offline"


def test_a_status_refresh_under_way_does_not_undo_a_session_ending(live, engine):
    """The periodic refresh reads which devices are connected when it starts; a session
    that ends while it writes (a slow store) is written after it, also when the gateway
    stops meanwhile: the device ends offline, not online by the refresh's old view."""
    (ident,) = add_devices(engine, "gt06", 1)
    with live(status_interval_s=0.05) as gateway:
        directory = gateway.gateway.registry.directory
        refresh, began, ended = directory.refresh_statuses, threading.Event(), threading.Event()

        def slow_refresh(*, now: datetime, connected: set[int]) -> object:
            if not connected:
                return refresh(now=now, connected=connected)
            began.set()
            time.sleep(0.5)
            try:
                return refresh(now=now, connected=connected)
            finally:
                ended.set()

        directory.refresh_statuses = slow_refresh
        with socket.create_connection(("127.0.0.1", gateway.port("gt06"))) as s:
            s.sendall(gt06.encode_login(ident, 1))
            s.settimeout(10)
            assert s.recv(64)  # the login ACK: a session
            s.sendall(gt06_location(2, 0))
            assert wait_until(lambda: stored(engine, [ident]) != [])
            assert wait_until(began.is_set)  # a refresh under way counts the device connected
        assert wait_until(lambda: not gateway.gateway.stats.open_connections)
        gateway.call(gateway.gateway.stop())
        assert wait_until(ended.is_set)
        assert devices(engine, [ident])[0].status == "offline"


def wait_until(condition: Callable[[], bool], timeout_s: float = 10) -> bool:
    """Poll ``condition`` (a timed ``Event.wait`` never wakes under faketime)."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_terminals_registering_together_have_their_codes_saved_together(live, engine):
    """JT/T 808 terminals registering at once: their auth codes are stored in a few writes,
    each before its code is sent, and every terminal then authenticates with it."""
    after, writes = storm(live, engine, "jt808", "set_auth_codes")
    stored_codes = {device.id: device.auth_code for device in after}
    assert {d: c for batch in writes for d, c in batch.items()} == stored_codes
    assert None not in stored_codes.values() and len(writes) < len(after)


def test_the_gateway_marks_silent_devices_offline(live, engine):
    """A device without a session whose last fix is old is marked offline by the gateway's
    periodic refresh, with no connection involved."""
    (ident,) = add_devices(engine, "gt06", 1)
    with transaction(session_factory(engine)) as session:
        session.execute(
            update(Device)
            .where(Device.ident == ident)
            .values(
                status="online", report_interval_s=60, last_fix_at=datetime(2026, 1, 1, tzinfo=UTC)
            )
        )
    with live(status_interval_s=0.2):
        deadline = time.monotonic() + 10
        while devices(engine, [ident])[0].status != "offline" and time.monotonic() < deadline:
            time.sleep(0.1)
    assert devices(engine, [ident])[0].status == "offline"


def test_alarms_are_read_with_the_profile_of_the_devices_registered_model(live, engine):
    """A vendor's additional-information alarm item counts for devices registered with its
    model only; the reserved tamper bit counts for every device (issue 18)."""
    vendor, other = add_devices(engine, "jt808", 2)
    with transaction(session_factory(engine)) as session:
        session.execute(update(Device).where(Device.ident == vendor).values(model="VENDOR-E6"))
    item, tamper = (bytes.fromhex(frame)[13:-2] for frame in (ITEM_E6_ON, TAMPER_BIT_16))
    item = item[:22] + bytes.fromhex("241105083100") + item[28:]  # a minute after the tamper
    models = {"VENDOR-E6": {"alarms": {"jt808_items": {"0xE6": "removal"}}}}
    with live(models=models, require_auth=False) as gateway:
        for ident in (vendor, other):
            with socket.create_connection(("127.0.0.1", gateway.port("jt808"))) as s:
                s.settimeout(10)
                s.sendall(jt808.encode_frame(jt808.LOCATION, ident, 1, tamper))
                assert s.recv(4096)  # answered: the device is identified, its profile applies
                s.sendall(jt808.encode_frame(jt808.LOCATION, ident, 2, item))
                s.sendall(jt808.encode_frame(jt808.LOGOUT, ident, 3))
                while s.recv(4096):
                    pass
    assert [p.alarms for p in stored(engine, [vendor])] == ["tamper", "removal"]
    assert [p.alarms for p in stored(engine, [other])] == ["tamper", ""]
