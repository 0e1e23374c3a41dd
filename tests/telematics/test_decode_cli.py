"""`lienwatch decode` through typer's CliRunner, on a tiny app built with register()."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import typer
from typer.testing import CliRunner

from lienwatch.commands.telematics import register
from lienwatch.telematics.protocols import gt06, jt808

runner = CliRunner()


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root."""

    register(app)
    return app


def run(*args: str, stdin: str | None = None):
    result = runner.invoke(make_app(), ["decode", "--json", *args], input=stdin)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return result.exit_code, lines


def test_gt06_session_login_then_location() -> None:
    login = gt06.encode_login("868120145233604", 1, type_code=0, utc_offset=timedelta(hours=8))
    fix = gt06.Gt06Fix(datetime(2024, 5, 1, 2, 3, 4, tzinfo=UTC), 22.543096, 114.057865, 37, 90)
    location = gt06.encode_location(2, fix, utc_offset=timedelta(hours=8))
    code, lines = run("--protocol", "gt06", login.hex(), location.hex())
    assert code == 0
    assert lines[0]["type"] == "login" and lines[0]["reply"] == gt06.encode_ack(1, 1).hex()
    assert lines[0]["time"] is None and lines[0]["lat"] is None
    assert lines[1] == {
        "protocol": "gt06",
        "type": "location",
        "device_id": "868120145233604",
        "serial": 2,
        "time": "2024-05-01T02:03:04Z",
        "lat": 22.543096,
        "lon": 114.057865,
        "speed_kmh": 37.0,
        "course": 90,
        "valid": True,
        "alarms": [],
        "status": {"course_status": 0x1400 | 90, "differential": False},
        "extras": {"satellites": 0, "mcc": 460, "mnc": 0, "lac": 0, "cell_id": 0},
        "reply": None,
    }


def test_gt06_device_id_option_for_frames_without_login() -> None:
    frame = "78781f120f0a140e150bc505e51e780293a9e800540000f601006e0055da00035f240d0a"
    assert run("-p", "gt06", frame)[1][0]["device_id"] is None
    assert run("-p", "gt06", "--device-id", "353451040000000", frame)[1][0]["device_id"] == (
        "353451040000000"
    )


def test_jt808_batch_prints_one_object_per_position_reply_once() -> None:
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    reports = [jt808.LocationReport(t0 + timedelta(minutes=i), 30.0, 120.0) for i in range(3)]
    body = jt808.encode_batch_body(reports, blind_area=True)
    frame = jt808.encode_frame(0x0704, "13800138000", 5, body)
    code, lines = run("-p", "jt808", stdin=frame.hex() + "\n")
    assert code == 0 and len(lines) == 3
    assert [line["time"] for line in lines] == [
        "2024-05-01T00:00:00Z",
        "2024-05-01T00:01:00Z",
        "2024-05-01T00:02:00Z",
    ]
    assert lines[0]["reply"] and lines[1]["reply"] is None and lines[2]["reply"] is None
    assert all(line["extras"]["blind_area"] for line in lines)


def test_errors_print_and_exit_1_after_the_rest() -> None:
    bad_crc = "78781F120B081D112E10CC027AC7EB0C46584900148F01CC00287D001FB8000380810D0A"
    good = "78780D01012345678901234500018CDD0D0A"
    code, lines = run("-p", "gt06", bad_crc, "not-hex", good)
    assert code == 1
    assert lines[0]["error"].startswith("bad_checksum") and lines[0]["frame"] == bad_crc.lower()
    assert lines[1] == {"error": "frame: not hexadecimal", "frame": "not-hex"}
    assert lines[2]["type"] == "login"


def test_truncated_input_is_reported() -> None:
    code, lines = run("-p", "jt808", "7e0002000004304832546500")
    assert code == 1 and lines == [
        {
            "error": "incomplete: incomplete frame at end of input",
            "frame": "7e0002000004304832546500",
        }
    ]
