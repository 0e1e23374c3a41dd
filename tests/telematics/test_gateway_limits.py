"""The gateway's limits against hostile clients, through real sockets on loopback (issue 11)."""

from __future__ import annotations

import socket
import time

import pytest

from lienwatch.telematics.protocols import gt06
from tests.telematics.support import add_devices


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
