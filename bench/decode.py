"""Decode throughput of the JT/T 808 and GT06 decoders against a plain baseline, same run.

The baseline is what a first implementation looks like: frames already split, a byte loop for
the JT/T 808 XOR, a table-driven pure-Python CRC-16/X-25 for GT06, ``struct`` for the fields;
no stream framing, no validation beyond the checksum, no alarms or extras. lienwatch's
decoders get the same frames as one byte stream cut into 4 KiB reads, as a socket gives them.

Run: ``python bench/decode.py [frames]``; prints frames per second and the ratio.
"""

from __future__ import annotations

import os
import struct
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from lienwatch.telematics.protocols import Gt06Decoder, Jt808Decoder, Message, gt06, jt808

T0 = datetime(2024, 1, 1, tzinfo=UTC)
READ_SIZE = 4096


def jt808_frames(count: int) -> list[bytes]:
    reports = (
        jt808.LocationReport(
            T0 + timedelta(seconds=i), 22.5 + i * 1e-6, 114.05, speed_kmh=36.5, course=i % 360,
            alarm_word=0x100 if i % 50 == 0 else 0,
            extras=[(0x01, (i * 3).to_bytes(4, "big")), (0x30, b"\x1f"), (0x31, b"\x0c")],
        )
        for i in range(count)
    )  # fmt: skip
    return [
        jt808.encode_frame(0x0200, "13800138000", i & 0xFFFF, jt808.encode_location_body(r))
        for i, r in enumerate(reports)
    ]


def gt06_frames(count: int) -> list[bytes]:
    return [
        gt06.encode_location(
            i & 0xFFFF,
            gt06.Gt06Fix(T0 + timedelta(seconds=i), 22.5 + i * 1e-6, 114.05, 36, i % 360),
        )
        for i in range(count)
    ]


_CRC_TABLE = []
for _byte in range(256):
    _crc = _byte
    for _ in range(8):
        _crc = (_crc >> 1) ^ 0x8408 if _crc & 1 else _crc >> 1
    _CRC_TABLE.append(_crc)


def naive_gt06(frame: bytes) -> tuple[float, float]:
    crc = 0xFFFF
    for byte in frame[2:-4]:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    if crc ^ 0xFFFF != struct.unpack_from(">H", frame, len(frame) - 4)[0]:
        raise ValueError("crc")
    _, _, lat, lon, _, course = struct.unpack_from(">6sBIIBH", frame, 4)
    return (lat if course & 0x400 else -lat) / 1.8e6, (-lon if course & 0x800 else lon) / 1.8e6


def naive_jt808(frame: bytes) -> tuple[float, float]:
    raw = frame[1:-1].replace(b"\x7d\x02", b"\x7e").replace(b"\x7d\x01", b"\x7d")
    check = 0
    for byte in raw[:-1]:
        check ^= byte
    if check != raw[-1]:
        raise ValueError("xor")
    _, status, lat, lon = struct.unpack_from(">IIII", raw, 12)
    return (-lat if status & 4 else lat) / 1e6, (-lon if status & 8 else lon) / 1e6


def run_decoder(make: Callable[[], Jt808Decoder | Gt06Decoder], stream: bytes) -> int:
    decoder = make()
    positions = 0
    for start in range(0, len(stream), READ_SIZE):
        for event in decoder.feed(stream[start : start + READ_SIZE]):
            assert isinstance(event, Message), event
            positions += len(event.positions)
    return positions


def best_rate(work: Callable[[], int], frames: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        done = work()
        best = min(best, time.perf_counter() - started)
        assert done == frames, (done, frames)
    return frames / best


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  frames: {count}")
    cases = [
        ("jt808", jt808_frames(count), Jt808Decoder, naive_jt808),
        ("gt06", gt06_frames(count), Gt06Decoder, naive_gt06),
    ]
    for name, frames, decoder_class, naive in cases:
        stream = b"".join(frames)
        ours = best_rate(lambda: run_decoder(decoder_class, stream), count)  # noqa: B023
        baseline = best_rate(lambda: len([naive(f) for f in frames]), count)  # noqa: B023
        print(
            f"{name:6} lienwatch {ours:10,.0f} frames/s   naive baseline {baseline:10,.0f} frames/s"
            f"   ratio {ours / baseline:.2f}"
        )


if __name__ == "__main__":
    main()
