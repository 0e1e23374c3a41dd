"""The gateway's limits against hostile clients, through real sockets on loopback (issue 11)."""

from __future__ import annotations

import contextlib
import socket
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from lienwatch.store.db import session_factory, transaction
from lienwatch.store.tables import Alert, Device, PositionConflict
from lienwatch.telematics.protocols import Jt808Decoder, Message, gt06, jt808
from tests import factories
from tests.telematics.support import T0, add_devices, new_ident
from tests.telematics.test_gateway import devices, replies_until_closed, results, stored

FITTED = date(2026, 11, 1)


def connect(gateway, protocol: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gateway.port(protocol)))


def closed_by_server(sock: socket.socket, timeout: float = 5) -> bool:
    """Whether the server closes ``sock`` within ``timeout`` (whatever it sends before)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionError:
        return True
    except TimeoutError:
        return False
    return True


def test_a_small_gt06_junk_frame_does_not_freeze_the_server(live, engine):
    """``79 79 FF FF`` and 60 KB of ``79`` froze the event loop 1.8 s (quadratic resync)."""
    attacker, device = add_devices(engine, "gt06", 2)
    with live() as gateway:
        address = ("127.0.0.1", gateway.port("gt06"))
        with socket.create_connection(address) as junk, socket.create_connection(address) as s:
            junk.sendall(gt06.encode_login(attacker, 1))  # identified: its bytes are decoded
            junk.settimeout(5)
            assert junk.recv(64)
            junk.sendall(b"\x79\x79\xff\xff" + b"\x79" * 60_000)
            time.sleep(0.05)  # the server is reading the junk
            started = time.monotonic()
            s.sendall(gt06.encode_login(device, 1))
            s.settimeout(5)
            assert s.recv(64) == gt06.encode_ack(gt06.LOGIN, 1)
            assert time.monotonic() - started < 0.5
            assert closed_by_server(junk)
    assert gateway.gateway.stats.closed["junk"] == 1


@pytest.mark.parametrize(
    ("protocol", "junk"),
    [("gt06", b"\x78\x78\x79\x79"), ("gt06", b"\x78\x78\xff"), ("jt808", b"\x7e\x00\x01\x7e"),
     ("jt808", b"\x01\x02\x03")],
)  # fmt: skip
def test_junk_costs_the_sender_its_connection(live, protocol, junk):
    with (
        live(max_unidentified_bytes=1 << 20) as gateway,
        socket.create_connection(("127.0.0.1", gateway.port(protocol))) as s,
    ):
        s.sendall(junk * (65_536 // len(junk)))
        assert closed_by_server(s)
    assert gateway.gateway.stats.closed["junk"] == 1


def test_future_fixes_and_impossible_motion_are_refused_and_counted(live, engine):
    """A fix dated 2099 used to be stored live and pin the device online forever; 5000 km/h
    and course 9999 were stored too."""
    phone = add_devices(engine, "jt808", 1)[0]
    (imei,) = add_devices(engine, "gt06", 1)
    future, t0 = datetime(2099, 1, 1, tzinfo=UTC), datetime.fromtimestamp(T0, UTC)
    jt_reports = [jt808.LocationReport(future, 30.5, 114.3),
                  jt808.LocationReport(t0, 30.5, 114.3, 5000, 0),
                  jt808.LocationReport(t0, 30.5, 114.3, 50, 9999),
                  jt808.LocationReport(t0, 30.5, 114.3, 50, 90)]  # fmt: skip
    gt_fixes = [gt06.Gt06Fix(future.replace(year=2098), 31.2, 121.4),
                gt06.Gt06Fix(t0, 31.2, 121.4)]  # fmt: skip
    with live(require_auth=False) as gateway:
        with socket.create_connection(("127.0.0.1", gateway.port("jt808"))) as s:
            s.sendall(b"".join(
                jt808.encode_frame(jt808.LOCATION, phone, n, jt808.encode_location_body(r))
                for n, r in enumerate(jt_reports)
            ) + jt808.encode_frame(jt808.LOGOUT, phone, 9))  # fmt: skip
            assert results(replies_until_closed(s)) == [(0, 0), (1, 2), (2, 2), (3, 0), (9, 0)]
        with socket.create_connection(("127.0.0.1", gateway.port("gt06"))) as s:
            s.sendall(gt06.encode_login(imei, 1))
            s.settimeout(5)
            assert s.recv(64)
            s.sendall(b"".join(gt06.encode_location(2 + n, f) for n, f in enumerate(gt_fixes)))
            s.sendall(gt06.encode_heartbeat(9, gt06.TerminalStatus()))
            assert s.recv(64)  # the heartbeat's ACK: everything before it is handled
        assert gateway.gateway.stats.refused_fixes == {"clock_ahead": 2}
    rows = stored(engine, [phone, imei])
    assert [r.fix_time for r in rows] == [t0, t0]
    assert {d.last_fix_at for d in devices(engine, [phone, imei])} == {t0}


def heartbeat(phone: str, serial: int) -> bytes:
    return jt808.encode_frame(jt808.HEARTBEAT, phone, serial)


def test_connections_are_capped_per_address_and_per_port(live):
    for limits in ({"max_connections_per_address": 3}, {"max_connections": 3}):
        with live(**limits) as gateway:
            address = ("127.0.0.1", gateway.port("gt06"))
            held = [socket.create_connection(address) for _ in range(3)]
            time.sleep(0.2)  # the server has taken the three
            with socket.create_connection(address) as fourth:
                assert closed_by_server(fourth, timeout=2)
            for s in held:
                s.settimeout(0.2)
                with pytest.raises(TimeoutError):  # still open: no EOF
                    s.recv(1)
                s.close()
        assert gateway.gateway.stats.closed["too many connections"] == 1


def test_a_device_must_identify_in_time_and_within_a_byte_budget(live):
    phone = "013900000999"  # heartbeats do not identify a device
    with live(identify_timeout_s=0.5) as gateway, connect(gateway, "jt808") as s:
        started = time.monotonic()
        for serial in range(30):
            with contextlib.suppress(ConnectionError):  # closed on the way
                s.sendall(heartbeat(phone, serial))
            time.sleep(0.05)
        assert closed_by_server(s)
        assert time.monotonic() - started < 3
    assert gateway.gateway.stats.closed["not identified in time"] == 1
    with live(max_unidentified_bytes=1024) as gateway, connect(gateway, "jt808") as s:
        s.sendall(b"".join(heartbeat(phone, n) for n in range(100)))  # 1,700 bytes
        assert closed_by_server(s)
    assert gateway.gateway.stats.closed["not identified"] == 1


def test_junk_does_not_keep_a_connection_alive(live):
    with live(idle_timeout_s=0.5) as gateway, connect(gateway, "gt06") as s:
        started = time.monotonic()
        with contextlib.suppress(ConnectionError):  # until the server has closed
            while time.monotonic() - started < 3:
                s.sendall(b"\x00")  # never a message
                time.sleep(0.05)
        assert time.monotonic() - started < 1.5
        assert closed_by_server(s)
    assert gateway.gateway.stats.closed["idle timeout"] == 1


def test_sub_packets_before_authentication_are_not_buffered_nor_acknowledged(live):
    phone = "013900000998"
    packets = jt808.encode_packets(jt808.LOCATION, phone, 1, b"\x00" * 3000, packet_size=500)
    with live() as gateway, connect(gateway, "jt808") as s:
        s.sendall(b"".join(packets))
        assert replies_until_closed(s) == []
    assert gateway.gateway.stats.closed["refused"] == 1


def test_a_flood_beyond_the_longest_pause_is_disconnected(live, engine):
    (phone,) = add_devices(engine, "jt808", 1)
    limits = {"require_auth": False, "max_messages_per_s": 10, "burst_messages": 5,
              "max_rate_pause_s": 1}  # fmt: skip
    with live(**limits) as gateway, connect(gateway, "jt808") as s:
        started = time.monotonic()
        s.sendall(b"".join(heartbeat(phone, n) for n in range(100)))  # a 9.5 s pause
        replies_until_closed(s)
        assert time.monotonic() - started < 3
    assert gateway.gateway.stats.closed["rate"] == 1


def register(s: socket.socket, phone: str, serial: int = 1) -> Message:
    registration = jt808.Registration(44, 300, "LW", "M-1", "T1", 1, "粤B1")
    body = jt808.encode_register_body(registration)
    s.sendall(jt808.encode_frame(jt808.REGISTER, phone, serial, body))
    s.settimeout(5)
    (reply,) = Jt808Decoder().feed(s.recv(4096))
    return reply


def test_nobody_takes_over_a_registered_terminal(live, engine):
    """A second 0x0100 for a registered terminal used to get a fresh code (the real one then
    failed); now it gets result 3 and the terminal's code stands."""
    (phone,) = add_devices(engine, "jt808", 1)
    with live() as gateway:
        with connect(gateway, "jt808") as device:
            code = register(device, phone).extras["auth_code"]
            device.sendall(jt808.encode_frame(jt808.AUTH, phone, 2, jt808.encode_auth_body(code)))
            assert device.recv(4096)
            with connect(gateway, "jt808") as thief:
                taken = register(thief, phone)
                assert (taken.extras["result"], taken.extras["auth_code"]) == (3, "")
                assert closed_by_server(thief)
        with connect(gateway, "jt808") as device:  # the real terminal comes back
            device.sendall(jt808.encode_frame(jt808.AUTH, phone, 3, jt808.encode_auth_body(code)))
            device.sendall(jt808.encode_frame(jt808.LOGOUT, phone, 4))
            assert results(replies_until_closed(device)) == [(3, 0), (4, 0)]


def gt06_login(s: socket.socket, imei: str) -> bytes:
    s.sendall(gt06.encode_login(imei, 1))
    s.settimeout(5)
    try:
        return s.recv(64)
    except ConnectionError:
        return b""


def test_one_live_session_per_device_and_conflicting_fixes_are_kept(live, engine):
    """A second GT06 login with a live device's IMEI used to be accepted and its forged fix
    stored, while the real fix of the same time was dropped though acknowledged."""
    (imei,) = add_devices(engine, "gt06", 1)
    at = datetime.fromtimestamp(T0, UTC)
    real, forged = gt06.Gt06Fix(at, 31.2, 121.4), gt06.Gt06Fix(at, 22.5, 114.0)
    with live(session_alive_s=1) as gateway:
        with connect(gateway, "gt06") as device:
            assert gt06_login(device, imei)
            with connect(gateway, "gt06") as clone:  # while the device is live: refused
                assert gt06_login(clone, imei) == b""
                clone.sendall(gt06.encode_location(2, forged))
                assert closed_by_server(clone)
            assert gateway.gateway.stats.device_cloned == 1
            time.sleep(1.2)  # the device has gone quiet: a new connection takes over
            with connect(gateway, "gt06") as clone:
                assert gt06_login(clone, imei)
                assert closed_by_server(device)
                clone.sendall(gt06.encode_location(2, forged))
                clone.sendall(gt06.encode_heartbeat(3, gt06.TerminalStatus()))
                assert clone.recv(64)
            with connect(gateway, "gt06") as device:
                assert gt06_login(device, imei)
                device.sendall(gt06.encode_location(2, real))
                device.sendall(gt06.encode_heartbeat(3, gt06.TerminalStatus()))
                assert device.recv(64)
        assert gateway.gateway.stats.sessions_superseded >= 1
    assert [(p.lat, p.fix_time) for p in stored(engine, [imei])] == [(22.5, at)]
    with transaction(session_factory(engine)) as session:
        kept = session.execute(select(PositionConflict.lat, PositionConflict.stored_lat)).all()
    assert kept == [(31.2, 22.5)]


def test_a_cloned_device_becomes_one_open_collateral_alert_on_its_vehicle(live, engine):
    """Two live sessions of one device raise a ``device_cloned`` alert on the device's
    vehicle and loan, naming both peers; a second clone repeats it while it is open."""
    with transaction(session_factory(engine)) as session:
        loan = factories.loan(session, "CLONED-1")
        imei = new_ident("gt06")
        factories.device(session, imei, protocol="gt06").vehicle_id = loan.vehicle_id
        loan_id, vehicle_id = loan.id, loan.vehicle_id
    with live(session_alive_s=30) as gateway, connect(gateway, "gt06") as device:
        assert gt06_login(device, imei)
        peers = [f"127.0.0.1:{device.getsockname()[1]}"]
        for _ in range(2):
            with connect(gateway, "gt06") as clone:
                peers.append(f"127.0.0.1:{clone.getsockname()[1]}")
                assert gt06_login(clone, imei) == b""
                assert closed_by_server(clone)
        assert gateway.gateway.stats.device_cloned == 2
    with transaction(session_factory(engine)) as session:
        (alert,) = session.scalars(select(Alert).where(Alert.vehicle_id == vehicle_id))
        assert (alert.type, alert.status, alert.severity) == ("device_cloned", "open", "critical")
        assert (alert.loan_id, alert.repeats, alert.key) == (loan_id, 1, None)
        assert alert.evidence["device"] == imei
        assert alert.evidence["addresses"] == sorted(peers)


def test_fixes_dated_before_the_device_was_fitted_are_refused_and_counted(live, engine):
    """A tracker replaying a history older than its fitting, or with its clock reset, used
    to have those fixes stored as positions."""
    (imei,) = add_devices(engine, "gt06", 1)
    with transaction(session_factory(engine)) as session:
        session.execute(update(Device).where(Device.ident == imei).values(fitted_on=FITTED))
    on_the_day = datetime(2026, 10, 31, 10, tzinfo=UTC)  # 11-01 00:00 at UTC+14
    fixes = [gt06.Gt06Fix(on_the_day - timedelta(seconds=1), 31.2, 121.4),
             gt06.Gt06Fix(datetime(2000, 1, 1, tzinfo=UTC), 31.2, 121.4),  # a reset clock
             gt06.Gt06Fix(on_the_day, 31.2, 121.4)]  # fmt: skip
    with live() as gateway, connect(gateway, "gt06") as s:
        assert gt06_login(s, imei)
        s.sendall(b"".join(gt06.encode_location(2 + n, f) for n, f in enumerate(fixes)))
        s.sendall(gt06.encode_heartbeat(9, gt06.TerminalStatus()))
        assert s.recv(64)  # the heartbeat's ACK: everything before it is handled
        assert gateway.gateway.stats.refused_fixes == {"before_fitting": 2}
    assert [r.fix_time for r in stored(engine, [imei])] == [on_the_day]
