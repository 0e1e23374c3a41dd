"""The gateway's limits against hostile clients, through real sockets on loopback (issue 11)."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime

import pytest

from lienwatch.telematics.protocols import gt06, jt808
from tests.telematics.support import T0, add_devices
from tests.telematics.test_gateway import devices, replies_until_closed, results, stored


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
    (imei,) = add_devices(engine, "gt06", 1)
    with live() as gateway:
        address = ("127.0.0.1", gateway.port("gt06"))
        with socket.create_connection(address) as junk, socket.create_connection(address) as s:
            junk.sendall(b"\x79\x79\xff\xff" + b"\x79" * 60_000)
            time.sleep(0.05)  # the server is reading the junk
            started = time.monotonic()
            s.sendall(gt06.encode_login(imei, 1))
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
    with live() as gateway, socket.create_connection(("127.0.0.1", gateway.port(protocol))) as s:
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
