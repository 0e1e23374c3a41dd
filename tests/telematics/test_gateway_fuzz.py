"""Fuzzing the live gateway: valid frames, bad checksums, truncations and garbage mixed on one
connection and cut into arbitrary writes. No crash, no valid frame lost (each is stored and
acknowledged), no invalid frame accepted (nothing else is stored)."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from lienwatch.config import GatewaySettings
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Device, Position
from lienwatch.telematics.protocols import Jt808Decoder, Message, gt06, jt808
from tests.telematics.support import live_gateway
from tests.telematics.test_codec_fuzz import CODECS, streams
from tests.telematics.test_codec_fuzz import T0 as FRAME_T0

PHONE = "013800138000"  # the phone of the codec fuzz frames
IMEI = "868120145233604"
SYNC = 60_000  # serial of the heartbeat that closes each example


@pytest.fixture(scope="module")
def fuzz_gateway(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with transaction(session_factory(engine)) as session:
        session.add_all([Device(ident=PHONE, protocol="jt808", kind="wired"),
                         Device(ident=IMEI, protocol="gt06", kind="wireless")])  # fmt: skip
    settings = GatewaySettings(require_auth=False, burst_messages=100_000)
    with live_gateway(url, settings) as gateway:
        yield gateway, engine
    engine.dispose()


def send_in_pieces(sock: socket.socket, stream: bytes, cuts: list[int]) -> None:
    last = 0
    for cut in [*sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]:
        if cut > last:
            sock.sendall(stream[last:cut])
        last = cut


def stored_times(engine, ident: str) -> set:
    with transaction(session_factory(engine)) as session:
        device_id = session.scalar(select(Device.id).where(Device.ident == ident))
        query = select(Position.fix_time).where(Position.device_id == device_id)
        times = set(session.scalars(query))
        session.execute(delete(Position).where(Position.device_id == device_id))  # next example
    return times


def jt808_session(port: int, stream: bytes, cuts: list[int]) -> list[Message]:
    """Send the stream, then a heartbeat; return the replies up to the heartbeat's."""
    decoder, replies = Jt808Decoder(), []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        send_in_pieces(sock, stream, cuts)
        sock.sendall(jt808.encode_frame(jt808.HEARTBEAT, PHONE, SYNC))
        while not replies or replies[-1].extras.get("reply_serial") != SYNC:
            data = sock.recv(65536)
            assert data, "the gateway closed the connection"
            replies += [e for e in decoder.feed(data) if isinstance(e, Message)]
    return replies


def gt06_session(port: int, stream: bytes, cuts: list[int]) -> None:
    sync_ack = gt06.encode_ack(gt06.HEARTBEAT, SYNC)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(gt06.encode_login(IMEI, 1))
        send_in_pieces(sock, stream, cuts)
        sock.sendall(gt06.encode_heartbeat(SYNC, gt06.TerminalStatus()))
        received = b""
        while not received.endswith(sync_ack):
            data = sock.recv(65536)
            assert data, "the gateway closed the connection"
            received += data
    assert received.startswith(gt06.encode_ack(gt06.LOGIN, 1))


@pytest.mark.parametrize("protocol", ["jt808", "gt06"])
def test_mixed_streams_on_the_live_gateway(fuzz_gateway, protocol):
    gateway, engine = fuzz_gateway
    codec = CODECS[protocol]
    port = gateway.port(protocol)

    @given(data=st.data(), cuts=st.lists(st.integers(0, 10_000), max_size=12))
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def check(data, cuts):
        stream, valid, _broken = data.draw(streams(codec))
        if protocol == "jt808":
            replies = jt808_session(port, stream, cuts)
            acked = {r.extras["reply_serial"] for r in replies if r.extras.get("result") == 0}
            assert set(valid) <= acked  # every valid frame acknowledged ...
            assert not {s for s in acked if 50_000 <= s < SYNC}  # ... and no broken one
            ident = PHONE
        else:
            gt06_session(port, stream, cuts)
            ident = IMEI
        expected = {FRAME_T0 + timedelta(seconds=index) for index in valid}
        assert stored_times(engine, ident) == expected

    check()
    assert gateway.gateway.stats.publish_failures == 0
