"""GT06 codec: the Concox document's examples, real device frames, round trips and quirks.

Real frames come from the public test suite of Traccar (github.com/traccar/traccar,
src/test/java/org/traccar/protocol/Gt06ProtocolDecoderTest.java). The login example and its
response are the ones printed in the Concox GT06 communication protocol document.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lienwatch.telematics.protocols import DeviceProfile, ErrorKind, FrameError, Message, gt06
from lienwatch.telematics.protocols.alarms import alarm_map_from_dict
from lienwatch.telematics.protocols.gt06 import Gt06Decoder, Gt06Fix, TerminalStatus

CONCOX_LOGIN = "78780D01012345678901234500018CDD0D0A"
CONCOX_LOGIN_REPLY = "787805010001D9DC0D0A"
# The document's GPS example: its CRC (0x8081) does not match its content (0x7377).
CONCOX_GPS_BAD_CRC = "78781F120B081D112E10CC027AC7EB0C46584900148F01CC00287D001FB8000380810D0A"
# Traccar checks this one: 2015-10-20 14:21:11, 54.94535, 24.01762.
LOCATION_LITHUANIA = "78781f120f0a140e150bc505e51e780293a9e800540000f601006e0055da00035f240d0a"
# Traccar: login with time-zone word 0x190a (4:00 west, i.e. UTC-04:00).
LOGIN_UTC_MINUS_4 = "787811010864717003664467100f190a0002c6d20d0a"
# Traccar: alarm 0x16, alarm byte 02 (power cut), south and west.
ALARM_POWER_CUT = (
    "7878251610051b0f1c34c5022515d504b5dcd20738080902d4022bdf009cba5006640201006759680d0a"
)
# Traccar: alarm 0x16 whose terminal-info alarm bits are 111 (removal on some firmware).
ALARM_REMOVAL = (
    "7878251613020C12141AC5027951430C2A16F60014000900000000001A00007C550300020002F1E70D0A"
)
# Traccar: heartbeat, terminal info 0xc4 (fuel cut, GPS fixed, charging), voltage 6, GSM 4.
HEARTBEAT = "78780a13c40604000201298f5b0d0a"

T0 = datetime(2024, 3, 5, 1, 2, 3, tzinfo=UTC)


def decode(hex_frames: str, decoder: Gt06Decoder | None = None) -> list:
    return (decoder or Gt06Decoder()).feed(bytes.fromhex(hex_frames))


def test_crc_check_value() -> None:
    assert gt06.crc16_x25(b"123456789") == 0x906E


def test_concox_login_example_and_its_documented_reply() -> None:
    (message,) = decode(CONCOX_LOGIN)
    assert (message.kind, message.device_id, message.serial) == ("login", "123456789012345", 1)
    assert message.reply == bytes.fromhex(CONCOX_LOGIN_REPLY)


def test_real_location_checked_by_traccar() -> None:
    (message,) = decode(LOCATION_LITHUANIA, Gt06Decoder(device_id="353451040000000"))
    (fix,) = message.positions
    assert message.device_id == "353451040000000" and message.reply is None
    assert fix.time == datetime(2015, 10, 20, 14, 21, 11, tzinfo=UTC)
    assert round(fix.lat, 5) == 54.94535 and round(fix.lon, 5) == 24.01762 and fix.valid
    assert fix.extras["mcc"] == 246  # Lithuania


def test_login_time_zone_applies_to_the_session() -> None:
    decoder = Gt06Decoder()
    (login,) = decode(LOGIN_UTC_MINUS_4, decoder)
    assert login.device_id == "864717003664467" and login.extras["utc_offset_minutes"] == -240
    local = T0.astimezone(UTC) - timedelta(hours=4)  # what the device clock shows
    frame = gt06.encode_location(5, Gt06Fix(T0, 10, 20), utc_offset=timedelta(hours=-4))
    (message,) = decoder.feed(frame)
    assert message.device_id == "864717003664467"
    assert message.positions[0].time == T0 and local.hour == (T0.hour - 4) % 24
    # A profile offset wins over the login (firmware that announces one zone, uses another).
    forced = Gt06Decoder(DeviceProfile(utc_offset=timedelta(0)))
    decode(LOGIN_UTC_MINUS_4, forced)
    assert forced.feed(frame)[0].positions[0].time == T0 - timedelta(hours=4)


def test_real_alarm_power_cut_south_west() -> None:
    (message,) = decode(ALARM_POWER_CUT)
    (fix,) = message.positions
    assert message.kind == "alarm" and message.alarms == ("power_cut",)
    assert fix.lat < 0 and fix.lon < 0 and round(fix.lat, 4) == -19.9916
    assert fix.status["alarm_code"] == 2
    assert message.reply == gt06.encode_ack(0x16, message.serial)


def test_real_alarm_removal_from_terminal_info_bits() -> None:
    (message,) = decode(ALARM_REMOVAL)
    assert message.alarms == ("removal",)


def test_real_heartbeat_flags_and_ack() -> None:
    (message,) = decode(HEARTBEAT)
    assert message.kind == "heartbeat" and message.serial == 0x0129
    assert message.status["fuel_cut"] and message.status["gps_fixed"]
    assert message.status["charging"] and not message.status["acc"]
    assert (message.status["voltage_level"], message.status["gsm_level"]) == (6, 4)
    assert message.reply.hex() == "7878051301295d630d0a"


def test_bad_crc_rejected_unless_the_model_tolerates_it() -> None:
    decoder = Gt06Decoder()
    (error,) = decode(CONCOX_GPS_BAD_CRC, decoder)
    assert isinstance(error, FrameError) and error.kind is ErrorKind.BAD_CHECKSUM
    assert decoder.stats.errors[ErrorKind.BAD_CHECKSUM] == 1 and decoder.stats.positions == 0
    lenient = Gt06Decoder(DeviceProfile(accept_bad_checksum=True))
    (message,) = decode(CONCOX_GPS_BAD_CRC, lenient)
    (fix,) = message.positions
    assert not message.checksum_ok and lenient.stats.accepted_bad_checksum == 1
    assert fix.time == datetime(2011, 8, 29, 17, 46, 16, tzinfo=UTC)
    assert (round(fix.lat, 6), round(fix.lon, 6), fix.course) == (23.111668, 114.409285, 143)


def test_zero_time_is_rejected_not_invented() -> None:
    frame = bytearray(gt06.encode_location(1, Gt06Fix(T0, 10, 20)))
    frame[4:10] = bytes(6)
    body = bytes(frame[2:-4])
    frame[-4:-2] = gt06.crc16_x25(body).to_bytes(2, "big")
    (error,) = Gt06Decoder().feed(bytes(frame))
    assert isinstance(error, FrameError) and error.reason.startswith("time:")


# --- round trips -----------------------------------------------------------------------------

fixes = st.builds(
    Gt06Fix,
    time=st.datetimes(datetime(2000, 1, 2), datetime(2099, 12, 30), timezones=st.just(UTC)).map(
        lambda t: t.replace(microsecond=0)
    ),
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    speed_kmh=st.integers(0, 255),
    course=st.integers(0, 359),
    valid=st.booleans(),
    satellites=st.integers(0, 15),
)


@given(
    fix=fixes, protocol_no=st.sampled_from(sorted(gt06.LOCATIONS)), serial=st.integers(0, 0xFFFF)
)
@settings(max_examples=80)
def test_location_round_trip(fix: Gt06Fix, protocol_no: int, serial: int) -> None:
    frame = gt06.encode_location(
        serial, fix, protocol_no=protocol_no, cell=(460, 1, 0x2866, 0xEEE), acc=True
    )
    (message,) = Gt06Decoder().feed(frame)
    (got,) = message.positions
    assert (message.kind, message.msg_id, message.serial) == ("location", protocol_no, serial)
    assert got.time == fix.time and got.valid == fix.valid
    assert abs(got.lat - fix.lat) <= 1 / 3_600_000 and abs(got.lon - fix.lon) <= 1 / 3_600_000
    assert (got.speed_kmh, got.course, got.extras["satellites"]) == (
        fix.speed_kmh,
        fix.course,
        fix.satellites,
    )
    if protocol_no != gt06.GPS:
        assert got.extras["lac"] == 0x2866 and got.extras["cell_id"] == 0xEEE
    assert got.status.get("acc", True)  # only 0x22 carries ACC; it was sent on


@pytest.mark.parametrize("protocol_no", sorted(gt06.ALARMS))
def test_alarm_round_trip(protocol_no: int) -> None:
    status = TerminalStatus(alarm=0b010, acc=True, voltage_level=3, gsm_level=2)
    frame = gt06.encode_alarm(9, Gt06Fix(T0, -33.9, 18.4), status, 0x18, protocol_no=protocol_no)
    (message,) = Gt06Decoder().feed(frame)
    (fix,) = message.positions
    assert message.kind == "alarm" and message.alarms == ("removal", "power_cut")
    assert (
        fix.status["acc"] and fix.status["voltage_level"] == 3 and fix.status["alarm_code"] == 0x18
    )
    assert message.reply == gt06.encode_ack(protocol_no, 9)


@pytest.mark.parametrize("offset", [None, timedelta(hours=8), timedelta(hours=-5, minutes=-30)])
def test_login_round_trip(offset: timedelta | None) -> None:
    (message,) = Gt06Decoder().feed(
        gt06.encode_login("868120145233604", 1, type_code=0x3601, utc_offset=offset)
    )
    assert message.device_id == "868120145233604" and message.extras["type_code"] == 0x3601
    expected = None if offset is None else offset.total_seconds() // 60
    assert message.extras.get("utc_offset_minutes") == expected


def test_heartbeat_round_trip_and_terminal_alarm_mapping() -> None:
    status = TerminalStatus(fuel_cut=True, alarm=0b100, charging=False, armed=True, gsm_level=1)
    (message,) = Gt06Decoder().feed(gt06.encode_heartbeat(77, status))
    assert message.alarms == ("sos",) and message.status["armed"] and message.status["fuel_cut"]
    assert not message.status["charging"] and message.status["gsm_level"] == 1
    assert message.reply == gt06.encode_ack(0x13, 77)


def test_long_form_frames_and_acks() -> None:
    frame = gt06.encode_frame(gt06.HEARTBEAT, 3, TerminalStatus().to_bytes(), long=True)
    assert frame.startswith(b"\x79\x79")
    (message,) = Gt06Decoder().feed(frame)
    assert message.kind == "heartbeat" and message.reply == gt06.encode_ack(0x13, 3, long=True)
    reply = message.reply
    assert reply[:5] == bytes.fromhex("7979000513") and reply[5:7] == b"\x00\x03"
    assert gt06.crc16_x25(reply[2:-4]) == int.from_bytes(reply[-4:-2], "big")


def test_configured_alarm_codes() -> None:
    profile = DeviceProfile(
        alarms=alarm_map_from_dict({"gt06_codes": {"0x11": "power_cut", "0x02": ""}})
    )
    status = TerminalStatus()
    for code, default, configured in [(0x11, (), ("power_cut",)), (0x02, ("power_cut",), ())]:
        frame = gt06.encode_alarm(1, Gt06Fix(T0, 1, 1), status, code)
        assert Gt06Decoder().feed(frame)[0].alarms == default
        assert Gt06Decoder(profile).feed(frame)[0].alarms == configured


def test_session_of_login_then_locations_split_anywhere() -> None:
    stream = gt06.encode_login("868120145233604", 1) + b"".join(
        gt06.encode_location(i, Gt06Fix(T0 + timedelta(seconds=i), 22.5, 114.0))
        for i in range(2, 6)
    )
    decoder = Gt06Decoder()
    events = [event for byte in stream for event in decoder.feed(bytes([byte]))]
    assert all(isinstance(e, Message) for e in events)
    assert [e.serial for e in events] == [1, 2, 3, 4, 5]
    assert {e.device_id for e in events} == {"868120145233604"} and decoder.pending == b""


def test_encoders_reject_bad_fields() -> None:
    with pytest.raises(ValueError, match="imei"):
        gt06.encode_login("12345", 1)
    with pytest.raises(ValueError, match="content"):
        gt06.encode_frame(0x94, 1, bytes(300))
    with pytest.raises(ValueError, match="protocol_no"):
        gt06.encode_location(1, Gt06Fix(T0, 1, 1), protocol_no=0x13)


def test_a_course_beyond_359_is_refused() -> None:
    fix = gt06.Gt06Fix(time=datetime(2026, 11, 1, tzinfo=UTC), lat=31.2, lon=121.4, course=720)
    (error,) = Gt06Decoder().feed(gt06.encode_location(1, fix))
    assert isinstance(error, FrameError) and error.reason.startswith("course")
