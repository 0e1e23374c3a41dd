"""``lienwatch decode``: decode tracker frames given in hex, print one JSON object per message."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Annotated, Any

import typer

from lienwatch.telematics.protocols import DECODERS, Event, FrameError, Message, Position


class ProtocolName(StrEnum):
    JT808 = "jt808"
    GT06 = "gt06"


_POSITION_KEYS = ("time", "lat", "lon", "speed_kmh", "course", "valid")


def _position_fields(position: Position) -> dict[str, Any]:
    return {
        "time": position.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lat": round(position.lat, 6),
        "lon": round(position.lon, 6),
        "speed_kmh": position.speed_kmh,
        "course": position.course,
        "valid": position.valid,
    }


def event_records(event: Event) -> list[dict[str, Any]]:
    """The JSON-ready objects ``decode`` prints for one decoder event.

    A message with positions gives one object per position; the message's reply rides on
    the first of them (the others show null, so a script never sends it twice). Any other
    message gives one object whose position fields are null. A rejected frame gives
    ``{"error": reason, "frame": hex}``.
    """
    if isinstance(event, FrameError):
        return [{"error": f"{event.kind}: {event.reason}", "frame": event.frame.hex()}]
    return list(_message_records(event))


def _message_records(message: Message) -> Iterator[dict[str, Any]]:
    head = {
        "protocol": message.protocol,
        "type": message.kind,
        "device_id": message.device_id,
        "serial": message.serial,
    }
    checksum = {} if message.checksum_ok else {"checksum_ok": False}
    reply = message.reply.hex() if message.reply else None
    if not message.positions:
        yield {
            **head,
            **dict.fromkeys(_POSITION_KEYS),
            "alarms": list(message.alarms),
            "status": {**message.status, **checksum},
            "extras": dict(message.extras),
            "reply": reply,
        }
        return
    for index, position in enumerate(message.positions):
        yield {
            **head,
            **_position_fields(position),
            "alarms": list(position.alarms),
            "status": {**position.status, **checksum},
            "extras": {**message.extras, **position.extras},
            "reply": reply if index == 0 else None,
        }


def _frames(arguments: Iterable[str]) -> Iterator[tuple[str, bytes | None]]:
    """(text, bytes) per non-blank input; bytes is None when the text is not hexadecimal."""
    for text in arguments:
        compact = "".join(text.split())
        if not compact:
            continue
        try:
            yield text.strip(), bytes.fromhex(compact)
        except ValueError:
            yield text.strip(), None


def decode(
    protocol: Annotated[
        ProtocolName, typer.Option("--protocol", "-p", help="Tracker protocol of the frames.")
    ],
    frames: Annotated[
        list[str] | None,
        typer.Argument(
            help="Frames in hex, in stream order; read from stdin (one per line) if none."
        ),
    ] = None,
    device_id: Annotated[
        str | None,
        typer.Option(
            "--device-id", help="Device id for GT06 frames sent before (or without) a login."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per line (JSON lines).")
    ] = False,
) -> None:
    """Decode tracker frames and print one line per message (per position for batches), one
    JSON object with --json.

    All frames form one session, so a GT06 login's IMEI and time zone apply to the frames
    after it. A frame that cannot be decoded prints its error ({"error", "frame"}); the
    command then exits with status 1 after the rest.
    """

    def show(record: dict[str, Any]) -> None:
        typer.echo(json.dumps(record, ensure_ascii=False) if as_json else _line(record))

    decoder = DECODERS[protocol.value](device_id=device_id)
    failed = False
    for text, data in _frames(frames if frames else sys.stdin):
        if data is None:
            failed = True
            show({"error": "frame: not hexadecimal", "frame": text})
            continue
        for event in decoder.feed(data):
            failed |= isinstance(event, FrameError)
            for record in event_records(event):
                show(record)
    for error in decoder.flush():
        failed = True
        show(event_records(error)[0])
    if failed:
        raise typer.Exit(code=1)


def _line(record: dict[str, Any]) -> str:
    """``gt06 location device 123456789012345 serial 3 2015-10-20T14:21:11Z 54.945347,24.017622
    0.0 km/h course 0``, then the alarms and the reply to send, if any."""
    if "error" in record:
        return f"error {record['error']}: frame {record['frame']}"
    line = (f"{record['protocol']} {record['type']} device {record['device_id']} "
            f"serial {record['serial']}")  # fmt: skip
    if record["time"] is not None:
        line += (f" {record['time']} {record['lat']},{record['lon']} {record['speed_kmh']} km/h "
                 f"course {record['course']}")  # fmt: skip
        line += "" if record["valid"] else " (no fix)"
    if record["alarms"]:
        line += f" alarms {','.join(record['alarms'])}"
    if record["reply"]:
        line += f" reply {record['reply']}"
    return line


def register(app: typer.Typer) -> None:
    """Add the ``decode`` command to the root ``lienwatch`` app."""
    app.command("decode")(decode)
