"""The gateway's limits against hostile clients, through real sockets on loopback (issue 11)."""

from __future__ import annotations

import contextlib
import socket
import time
from datetime import UTC, datetime

import pytest

from lienwatch.telematics.protocols import gt06, jt808
from tests.telematics.support import T0, add_devices
from tests.telematics.test_gateway import devices, replies_until_closed, results, stored


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
