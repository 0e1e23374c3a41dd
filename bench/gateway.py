"""End-to-end gateway throughput: simulated devices over loopback TCP → stored positions.

The devices run in a separate process (the simulator of ``lienwatch.telematics.simulator``:
register/authenticate or login, then locations, every reply read and checked). A position
counts once the gateway acknowledged it, which it does only after the position is committed
to the store, so positions/s here is end to end. The gateway runs in this process with the
embedded default (in-process bus, SQLite in WAL mode); its CPU time is measured to give
positions per gateway CPU-second ("per core": the gateway is one asyncio process).

Baseline, same run, same devices and frames: a naive server that reads one frame at a time,
decodes it with the same decoder, inserts its position and commits before answering.

Decode-only frames/s (no sockets, no store) is printed for both protocols as well.

Run: ``python bench/gateway.py [--devices 100] [--fixes 400] [--database-url URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import select, update

from decode import best_rate, gt06_frames, jt808_frames, run_decoder
from lienwatch.config import BusSettings, GatewaySettings
from lienwatch.domain.positions import PositionColumns
from lienwatch.runtime import open_ingest, running_gateway
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Device
from lienwatch.telematics.protocols import Gt06Decoder, Jt808Decoder, Message
from lienwatch.telematics.simulator import PlayOptions, Track, play

HOST = "127.0.0.1"
T0 = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())


def idents(protocol: str, count: int) -> list[str]:
    return [f"0137{n:08d}" if protocol == "jt808" else f"86{n:013d}" for n in range(count)]


def tracks(protocol: str, devices: int, fixes: int, start: int) -> list[Track]:
    steps = np.arange(fixes)
    return [
        Track(ident, PositionColumns.of(
            np.full(fixes, ident, dtype=object), start + 30 * steps,
            30.0 + 1e-4 * steps + d * 1e-3, 120.0 + 1e-4 * steps,
            speed_kmh=np.full(fixes, 50.0), course=np.full(fixes, 90),
            alarms=np.where(steps % 100 == 50, "power_cut", "").astype(object)))
        for d, ident in enumerate(idents(protocol, devices))
    ]  # fmt: skip


def client(args: argparse.Namespace) -> None:
    """The device process: play the tracks, print the report as one JSON line."""
    options = PlayOptions(batch=args.batch, window=args.window, heartbeat_every=50)
    played = tracks(args.protocol, args.devices, args.fixes, args.start)
    report = asyncio.run(play(played, args.protocol, HOST, args.port, options))
    print(json.dumps({"positions": report.positions, "acked": report.acked_positions,
                      "errors": report.errors, "seconds": report.seconds}))  # fmt: skip


async def run_client(protocol: str, port: int, devices: int, fixes: int, batch: int,
                     window: int, start: int = T0) -> dict:  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", "--protocol", protocol, "--port", str(port),
        "--devices", str(devices), "--fixes", str(fixes), "--batch", str(batch),
        "--window", str(window), "--start", str(start), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    cpu = time.process_time()
    out, _ = await process.communicate()
    result = json.loads(out)
    result["gateway_cpu"] = time.process_time() - cpu
    assert result["errors"] == 0 and result["acked"] == result["positions"], result
    return result


def prepare(url: str, devices: int) -> None:
    """Migrate the database and register the devices it does not have yet."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    with transaction(session_factory(engine)) as session:
        known = set(session.scalars(select(Device.ident)))
        for protocol in ("jt808", "gt06"):
            session.add_all(Device(ident=i, protocol=protocol, kind="wired")
                            for i in idents(protocol, devices) if i not in known)  # fmt: skip
    engine.dispose()


async def lienwatch_run(url: str, protocol: str, devices: int, fixes: int, batch: int,
                        start: int) -> dict:  # fmt: skip
    # Each run's device process registers its terminals afresh: reset them, as an operator
    # would (`lienwatch device reset-auth`), since a terminal registers only once.
    engine = make_engine(url)
    with transaction(session_factory(engine)) as session:
        session.execute(update(Device).values(auth_code=None))
    engine.dispose()
    settings = GatewaySettings(max_messages_per_s=1e6, burst_messages=1_000_000)
    async with (
        open_ingest(url, settings, BusSettings()) as ingest,
        running_gateway(ingest, settings, host=HOST, ports={"jt808": 0, "gt06": 0}) as gateway,
    ):
        return await run_client(protocol, gateway.port(protocol), devices, fixes, batch, 8, start)


async def naive_run(path: Path, devices: int, fixes: int) -> dict:
    """The baseline: one frame per read, one INSERT and COMMIT per frame, then the reply."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    device_ids = dict(db.execute("SELECT ident, id FROM devices"))

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = Jt808Decoder()
        try:
            while True:
                await reader.readuntil(b"\x7e")  # opening delimiter
                frame = b"\x7e" + await reader.readuntil(b"\x7e")
                for event in decoder.feed(frame):
                    assert isinstance(event, Message), event
                    for p in event.positions:
                        db.execute(
                            "INSERT OR IGNORE INTO positions (device_id, fix_time, received_at,"
                            " lat, lon, speed_kmh, course, valid, alarms, archived)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (device_ids[event.device_id], p.time.isoformat(" "),
                             datetime.now(UTC).isoformat(" "), p.lat, p.lon, p.speed_kmh,
                             p.course, p.valid, ";".join(p.alarms), False),
                        )  # fmt: skip
                    db.commit()
                    if event.reply:
                        writer.write(event.reply)
                        await writer.drain()
                decoder.feed(b"")
        except asyncio.IncompleteReadError:
            writer.close()

    server = await asyncio.start_server(serve, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await run_client("jt808", port, devices, fixes, 1, 8)
    finally:
        server.close()
        db.close()


def show(name: str, result: dict) -> float:
    rate = result["positions"] / result["seconds"]
    per_cpu = result["positions"] / result["gateway_cpu"]
    print(f"{name:44} {result['positions']:8,} positions  {rate:9,.0f}/s end to end"
          f"  {per_cpu:9,.0f}/s per gateway CPU-second")  # fmt: skip
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--fixes", type=int, default=400)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--protocol", default="jt808", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--window", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=T0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args)
        return
    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  devices: {args.devices}"
          f"  fixes per device: {args.fixes}  (8 frames in flight per device)")  # fmt: skip
    for name, frames, decoder in (("jt808", jt808_frames, Jt808Decoder),
                                  ("gt06", gt06_frames, Gt06Decoder)):  # fmt: skip
        stream = b"".join(frames(20_000))
        rate = best_rate(lambda: run_decoder(decoder, stream), 20_000)  # noqa: B023
        print(f"decode only, {name:5}                            {rate:10,.0f} frames/s")
    with tempfile.TemporaryDirectory() as folder:
        runs = [("lienwatch jt808, 1 fix per frame (0x0200)", "jt808", 1),
                ("lienwatch jt808, 10 per frame (0x0704)", "jt808", 10),
                ("lienwatch gt06, 1 fix per frame (0x12/0x16)", "gt06", 1)]  # fmt: skip
        rates = {}
        for index, (name, protocol, batch) in enumerate(runs):
            url = args.database_url or f"sqlite:///{folder}/run{index}.sqlite3"
            prepare(url, args.devices)
            start = int(time.time()) - 10**7 * (index + 1)  # fresh fixes in a shared database
            result = asyncio.run(
                lienwatch_run(url, protocol, args.devices, args.fixes, batch, start)
            )
            rates[name] = show(name, result)
        naive_path = Path(folder) / "naive.sqlite3"
        prepare(f"sqlite:///{naive_path}", args.devices)
        baseline = show("naive baseline jt808, 1 fix per frame",
                        asyncio.run(naive_run(naive_path, args.devices, args.fixes)))
    ours = rates[runs[0][0]]
    print(f"ratio lienwatch / naive baseline (jt808, 1 fix per frame): {ours / baseline:.2f}")


if __name__ == "__main__":
    main()
