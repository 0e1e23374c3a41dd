"""Fuzzing both decoders: random bytes, truncations, bad checksums, garbage and valid frames
mixed in one stream, cut into arbitrary reads. No crash, no valid frame lost, no invalid frame
accepted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from lienwatch.telematics.protocols import DECODERS, FrameError, Message, gt06, jt808

T0 = datetime(2024, 1, 1, tzinfo=UTC)
VALID_SERIALS = range(0, 1000)  # valid frames use these; broken ones use 50000+


def jt808_frame(serial: int, seconds: int) -> bytes:
    report = jt808.LocationReport(T0 + timedelta(seconds=seconds), 22.5, 114.05, alarm_word=0x100)
    return jt808.encode_frame(0x0200, "13800138000", serial, jt808.encode_location_body(report))


def gt06_frame(serial: int, seconds: int) -> bytes:
    return gt06.encode_location(serial, gt06.Gt06Fix(T0 + timedelta(seconds=seconds), 22.5, 114.05))


def jt808_bad_checksum(serial: int, flip: int) -> bytes:
    raw = bytearray(jt808.unescape(jt808_frame(serial, 0)[1:-1]))
    raw[-1] ^= flip
    return b"\x7e" + jt808.escape(bytes(raw)) + b"\x7e"


def gt06_bad_crc(serial: int, flip: int) -> bytes:
    frame = bytearray(gt06_frame(serial, 0))
    frame[-3] ^= flip
    return bytes(frame)


@dataclass(frozen=True)
class Codec:
    name: str
    frame: object
    bad_checksum: object
    # Bytes that may start a frame; garbage avoids them so it cannot become a frame by chance.
    marks: bytes
    # How many bytes a truncation must cut: a JT/T 808 frame that lost only its closing 0x7E
    # is completed by the next frame's opening one (a shared delimiter), so it is not broken.
    min_cut: int


CODECS = {
    "jt808": Codec("jt808", jt808_frame, jt808_bad_checksum, b"\x7e", 2),
    "gt06": Codec("gt06", gt06_frame, gt06_bad_crc, b"\x78\x79", 1),
}


@st.composite
def streams(draw: st.DrawFn, codec: Codec) -> tuple[bytes, list[int], int]:
    """A stream of valid frames, broken frames and garbage; the valid serials; broken count."""
    parts: list[bytes] = []
    valid: list[int] = []
    broken = 0
    for index in range(draw(st.integers(1, 12))):
        choice = draw(st.sampled_from(["valid", "valid", "bad_checksum", "truncated", "garbage"]))
        if choice == "valid":
            valid.append(index)
            parts.append(codec.frame(index, index))
        elif choice == "bad_checksum":
            broken += 1
            parts.append(codec.bad_checksum(50000 + index, draw(st.integers(1, 255))))
        elif choice == "truncated":
            broken += 1
            whole = codec.frame(50000 + index, index)
            parts.append(whole[: draw(st.integers(2, len(whole) - codec.min_cut))])
        else:
            broken += 1
            alphabet = [b for b in range(256) if b not in codec.marks]
            parts.append(bytes(draw(st.lists(st.sampled_from(alphabet), min_size=1, max_size=40))))
    # A valid frame last, so a truncated frame before it is always followed by something.
    valid.append(999)
    parts.append(codec.frame(999, 999))
    return b"".join(parts), valid, broken


def feed_in_chunks(decoder, stream: bytes, cuts: list[int]) -> list:
    events, last = [], 0
    for cut in [*sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]:
        events += decoder.feed(stream[last:cut])
        last = cut
    return events + decoder.flush()


@given(
    protocol=st.sampled_from(sorted(CODECS)),
    data=st.data(),
    cuts=st.lists(st.integers(0, 10_000), max_size=20),
    max_frame=st.sampled_from([None, 128]),  # the gateway's limit, above these frames
)
@settings(max_examples=150, deadline=None)
def test_mixed_stream_keeps_every_valid_frame_and_accepts_no_broken_one(
    protocol: str, data: st.DataObject, cuts: list[int], max_frame: int | None
) -> None:
    codec = CODECS[protocol]
    stream, valid, broken = data.draw(streams(codec))
    decoder = DECODERS[protocol](max_frame=max_frame)
    events = feed_in_chunks(decoder, stream, cuts)
    messages = [e for e in events if isinstance(e, Message)]
    assert [m.serial for m in messages] == valid
    assert all(len(m.positions) == 1 and m.positions[0].lat == 22.5 for m in messages)
    if broken:
        assert any(isinstance(e, FrameError) for e in events)
    assert decoder.stats.messages == len(valid)


@given(
    protocol=st.sampled_from(sorted(CODECS)),
    noise=st.binary(max_size=600),
    cuts=st.lists(st.integers()),
    max_frame=st.sampled_from([None, 64]),
)
@settings(max_examples=200, deadline=None)
def test_random_bytes_never_crash(
    protocol: str, noise: bytes, cuts: list[int], max_frame: int | None
) -> None:
    decoder = DECODERS[protocol](max_frame=max_frame)
    for event in feed_in_chunks(decoder, noise, cuts):
        assert isinstance(event, Message | FrameError)
        for position in getattr(event, "positions", ()):
            assert -90 <= position.lat <= 90 and -180 <= position.lon <= 180
    assert decoder.pending == b""


@given(protocol=st.sampled_from(sorted(CODECS)), data=st.data())
@settings(max_examples=100, deadline=None)
def test_any_single_byte_corruption_never_yields_a_changed_position(
    protocol: str, data: st.DataObject
) -> None:
    codec = CODECS[protocol]
    frame = bytearray(codec.frame(7, 7))
    index = data.draw(st.integers(0, len(frame) - 1))
    frame[index] ^= data.draw(st.integers(1, 255))
    decoder = DECODERS[protocol]()
    events = decoder.feed(bytes(frame)) + decoder.flush()
    for event in events:
        # A one-byte change is caught by the checksum unless it only hit the framing in a
        # way that leaves the content intact; then the position must be the original one.
        if isinstance(event, Message):
            assert event.serial == 7 and event.positions[0].time == T0 + timedelta(seconds=7)
            assert event.positions[0].lat == 22.5
