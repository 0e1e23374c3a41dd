"""JT/T 808 codec: real device frames, round trips of every message type, quirks and replies.

Real frames come from the public test suite of Traccar (github.com/traccar/traccar,
src/test/java/org/traccar/protocol/Jt808ProtocolDecoderTest.java); the expected values were
worked out by hand from the JT/T 808-2013/2019 layouts.
"""

from __future__ import annotations

import functools
import operator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lienwatch.telematics.protocols import DeviceProfile, ErrorKind, FrameError, Message, jt808
from lienwatch.telematics.protocols.alarms import alarm_map_from_dict
from lienwatch.telematics.protocols.jt808 import (
    Jt808Decoder,
    LocationReport,
    Registration,
    encode_frame,
    unescape,
)

# Traccar: 2013 header, standard TLVs 0x01/0x02/0x03, Shenzhen.
LOCATION_2013 = (
    "7E0200002A013833501744001900000000000000C201597FA806CC01580080000000081508180721210104"
    "000002F502020000030200009F7E"
)
# Traccar: south and west hemispheres (status bits 2 and 3), Brazil.
LOCATION_SOUTH_WEST = (
    "7e020000220014012499170007000000000000400e012af16f02cbd2ba000000000000150101194257010400"
    "000077a97e"
)
# Traccar: alarm bit 7 (main power under-voltage) and a vendor TLV 0xEB.
LOCATION_LOW_VOLTAGE = (
    "7E020000480123456789010013000000800000000301597BC506CBFF6600EB00000155210726203531010400"
    "000000EB24000C00B28986047701207027150200060089FFFFEFFF0004002D0E10000600C5FFFFFFEF697E"
)
# Traccar: its XOR byte is wrong (0xd0, the header and body give 0xf0).
LOCATION_BAD_XOR = (
    "7E02000032013511221122000700000000000C000301578CC006CA3A5C00470000000014072317201501040000"
    "000030011631010BD07E"
)
# Traccar: 2019 header (attribute bit 14, version 1, BCD[10] phone), batch of one.
BATCH_2019 = (
    "7e0704402d0100000866496077582164881d0001000028000000000000000701a00192091f2a47001600000002"
    "26050916422701040000258230010031010e507e"
)
REGISTER_2011 = (
    "7E01000021013345678906000F002C012F373031313142534A2D4D3742203030303030303001D4C14238383838"
    "38B47E"
)
REGISTER_2013 = (
    "7E0100002D013511221122000500000000373031303748422D5230334742440000000000000000000000323336"
    "3631303402CBD5424136383630387E"
)
REGISTER_2019 = (
    "7e0100405c010000086649607758216452180000000000000000000000000000004d443330300000000000000000"
    "000000000000000000000000000000000038363634393630373735383231363400000000000000000000000000"
    "000004000000000000000000000000000000007a7e"
)
AUTH_2013 = "7E0102000E013511221122000661757468656E7469636174696F6E3F7E"
HEARTBEAT = "7e0002000004304832546500b7ca7e"

T0 = datetime(2024, 3, 5, 1, 2, 3, tzinfo=UTC)


def decode_one(hex_frame: str, decoder: Jt808Decoder | None = None) -> Message:
    events = (decoder or Jt808Decoder()).feed(bytes.fromhex(hex_frame))
    assert len(events) == 1 and isinstance(events[0], Message), events
    return events[0]


def test_real_location_2013() -> None:
    message = decode_one(LOCATION_2013)
    (fix,) = message.positions
    assert (message.kind, message.device_id, message.serial) == ("location", "013833501744", 25)
    assert fix.time == datetime(2015, 8, 17, 23, 21, 21, tzinfo=UTC)  # 07:21:21 GMT+8
    assert (fix.lat, fix.lon, fix.valid, fix.course) == (22.6426, 114.032984, True, 8)
    assert fix.extras["mileage_km"] == 75.7 and fix.extras["fuel_l"] == 0.0


def test_real_location_south_west() -> None:
    (fix,) = decode_one(LOCATION_SOUTH_WEST).positions
    assert (fix.lat, fix.lon) == (-19.591535, -46.912186)


def test_real_alarm_bit_and_vendor_tlv_kept_raw() -> None:
    message = decode_one(LOCATION_LOW_VOLTAGE)
    assert message.alarms == ("low_voltage",)
    assert message.positions[0].status["alarm_word"] == 0x80
    assert message.positions[0].extras["0xeb"].startswith("000c00b2")


def test_real_2019_batch_and_reply_in_2019_form() -> None:
    message = decode_one(BATCH_2019)
    assert message.device_id == "866496077582164"
    assert message.kind == "batch_location" and message.extras == {"blind_area": False}
    assert message.positions[0].lat == -27.263378
    reply = unescape(message.reply[1:-1])
    header = jt808.parse_header(reply[:-1])
    assert (header.msg_id, header.version, header.phone) == (0x8001, 1, "866496077582164")
    assert reply[header.size : -1] == bytes.fromhex("881d070400")  # serial, msg id, result 0


@pytest.mark.parametrize(
    ("frame", "edition", "model", "plate"),
    [
        (REGISTER_2011, "2011", "BSJ-M7B", "粤B88888"),
        (REGISTER_2013, "2013", "HB-R03GBD", "苏BA6860"),
        (REGISTER_2019, "2019", "MD300", ""),
    ],
)
def test_real_register_editions(frame: str, edition: str, model: str, plate: str) -> None:
    message = decode_one(frame)
    assert message.extras["edition"] == edition
    assert message.extras["model"] == model and message.extras["plate"] == plate
    reply = unescape(message.reply[1:-1])
    header = jt808.parse_header(reply[:-1])
    body = reply[header.size : -1]
    assert header.msg_id == 0x8100
    assert int.from_bytes(body[:2], "big") == message.serial and body[2] == 0
    assert body[3:].decode() == message.device_id  # default auth code: the terminal phone


def test_real_auth_and_heartbeat_get_general_response() -> None:
    assert decode_one(AUTH_2013).extras == {"auth_code": "authentication"}
    message = decode_one(HEARTBEAT)
    assert message.kind == "heartbeat"
    # 0x8001, phone 043048325465, platform serial 0, answering serial 0x00b7 msg 0x0002, ok.
    assert message.reply.hex() == "7e80010005043048325465000000b70002004e7e"


def test_bad_xor_rejected_and_counted_unless_the_model_tolerates_it() -> None:
    decoder = Jt808Decoder()
    (error,) = decoder.feed(bytes.fromhex(LOCATION_BAD_XOR))
    assert isinstance(error, FrameError) and error.kind is ErrorKind.BAD_CHECKSUM
    assert "0xd0" in error.reason and "0xf0" in error.reason
    assert decoder.stats.errors[ErrorKind.BAD_CHECKSUM] == 1 and decoder.stats.positions == 0
    # The sample was also cut short (header declares 50 body bytes, 40 came): tolerate both.
    sloppy = DeviceProfile(name="sloppy", accept_bad_checksum=True, accept_bad_length=True)
    lenient = Jt808Decoder(sloppy)
    message = decode_one(LOCATION_BAD_XOR, lenient)
    assert not message.checksum_ok and lenient.stats.accepted_bad_checksum == 1
    assert message.positions[0].lat == 22.51488


def test_declared_length_mismatch() -> None:
    raw = bytearray(unescape(bytes.fromhex(LOCATION_2013)[1:-1]))
    raw[3] += 1  # declare one body byte more than sent
    raw[-1] = jt808.xor_checksum(bytes(raw[:-1]))
    frame = b"\x7e" + jt808.escape(bytes(raw)) + b"\x7e"
    (error,) = Jt808Decoder().feed(frame)
    assert error.kind is ErrorKind.BAD_LENGTH
    (message,) = Jt808Decoder(DeviceProfile(accept_bad_length=True)).feed(frame)
    assert message.positions[0].lon == 114.032984


def test_bad_body_with_good_checksum_is_answered_with_message_error() -> None:
    body = jt808.encode_location_body(LocationReport(T0, 30, 120))[:-6] + bytes(6)  # time 0
    (error,) = Jt808Decoder().feed(encode_frame(0x0200, "13800138000", 7, body))
    assert isinstance(error, FrameError) and "time: 000000000000" in error.reason
    assert error.reply is not None and unescape(error.reply[1:-1])[-2] == jt808.RESULT_MESSAGE_ERROR


def test_encrypted_coordinates_are_never_read_as_plain() -> None:
    body = jt808.encode_location_body(LocationReport(T0, 30, 120, status_word=0x20))
    (error,) = Jt808Decoder().feed(encode_frame(0x0200, "13800138000", 1, body))
    assert isinstance(error, FrameError) and "encrypted" in error.reason


@given(st.binary(max_size=300))
@settings(max_examples=60)
def test_escape_round_trip_and_xor(data: bytes) -> None:
    escaped = jt808.escape(data)
    assert b"\x7e" not in escaped
    assert unescape(escaped) == data
    assert jt808.xor_checksum(data) == functools.reduce(operator.xor, data, 0)


def test_frame_with_delimiter_bytes_in_body_round_trips() -> None:
    report = LocationReport(T0, 31.2, 121.5, extras=[(0xE1, b"\x7e\x7d\x7e\x01")])
    frame = jt808.encode_frame(0x0200, "13800138000", 0x7E7D, jt808.encode_location_body(report))
    assert frame.count(b"\x7e") == 2
    (message,) = Jt808Decoder().feed(frame)
    assert message.serial == 0x7E7D and message.positions[0].extras["0xe1"] == "7e7d7e01"


# --- round trips -----------------------------------------------------------------------------

reports = st.builds(
    LocationReport,
    time=st.datetimes(datetime(2000, 1, 2), datetime(2099, 12, 30), timezones=st.just(UTC)).map(
        lambda t: t.replace(microsecond=0)
    ),
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    speed_kmh=st.integers(0, 5000).map(lambda v: v / 10),
    course=st.integers(0, 359),
    altitude_m=st.integers(0, 9000),
    valid=st.booleans(),
    alarm_word=st.integers(0, 2**32 - 1),
    status_word=st.integers(0, 2**32 - 1).map(lambda s: s & ~0x20),
)


@given(report=reports, version=st.sampled_from([None, 1]), serial=st.integers(0, 0xFFFF))
@settings(max_examples=80)
def test_location_round_trip(report: LocationReport, version: int | None, serial: int) -> None:
    body = jt808.encode_location_body(report)
    (message,) = Jt808Decoder().feed(
        encode_frame(0x0200, "13912345678", serial, body, version=version)
    )
    (fix,) = message.positions
    assert message.serial == serial and message.device_id == "013912345678"
    assert fix.time == report.time and fix.valid == report.valid
    assert abs(fix.lat - report.lat) <= 5e-7 and abs(fix.lon - report.lon) <= 5e-7
    assert (fix.speed_kmh, fix.course, fix.altitude_m) == (
        report.speed_kmh,
        report.course,
        report.altitude_m,
    )
    assert fix.status["alarm_word"] == report.alarm_word


def test_batch_round_trip_blind_area() -> None:
    fixes = [LocationReport(T0 + timedelta(minutes=i), 30 + i / 100, 120) for i in range(5)]
    body = jt808.encode_batch_body(fixes, blind_area=True)
    (message,) = Jt808Decoder().feed(encode_frame(0x0704, "13800138000", 9, body))
    assert [p.time for p in message.positions] == [f.time for f in fixes]
    assert message.extras["blind_area"] and all(p.extras["blind_area"] for p in message.positions)


def test_batch_with_one_bad_item_yields_no_position() -> None:
    good = jt808.encode_location_body(LocationReport(T0, 30, 120))
    body = b"\x00\x02\x00" + len(good).to_bytes(2, "big") + good + b"\x00\x05" + bytes(5)
    decoder = Jt808Decoder()
    (error,) = decoder.feed(encode_frame(0x0704, "13800138000", 9, body))
    assert isinstance(error, FrameError) and decoder.stats.positions == 0


@pytest.mark.parametrize("edition", ["2011", "2013", "2019"])
def test_register_round_trip(edition: str) -> None:
    registration = Registration(44, 303, "70111", "M7B", "T123456", 1, "粤B12345")
    version = 1 if edition == "2019" else None
    body = jt808.encode_register_body(registration, edition=edition)
    (message,) = Jt808Decoder().feed(encode_frame(0x0100, "13800138000", 1, body, version=version))
    assert message.extras["edition"] == edition
    assert {k: message.extras[k] for k in Registration.__slots__} == {
        k: getattr(registration, k) for k in Registration.__slots__
    }


@pytest.mark.parametrize("version", [None, 1])
def test_auth_round_trip(version: int | None) -> None:
    body = jt808.encode_auth_body(
        "A1B2", version=version, imei="866496077582164", software_version="v1"
    )
    (message,) = Jt808Decoder().feed(encode_frame(0x0102, "13800138000", 2, body, version=version))
    expected = {"auth_code": "A1B2"}
    if version:
        expected |= {"imei": "866496077582164", "software_version": "v1"}
    assert message.kind == "auth" and message.extras == expected


@pytest.mark.parametrize(("msg_id", "kind"), [(0x0002, "heartbeat"), (0x0003, "logout")])
def test_empty_body_messages_round_trip(msg_id: int, kind: str) -> None:
    (message,) = Jt808Decoder().feed(encode_frame(msg_id, "13800138000", 3))
    assert message.kind == kind and message.extras == {} and message.reply is not None


def test_responses_round_trip() -> None:
    phone = "13800138000"
    frames = [
        jt808.encode_terminal_response(phone, 1, reply_serial=7, reply_id=0x8105, result=0),
        jt808.encode_general_response(phone, 2, reply_serial=8, reply_id=0x0200, result=4),
        jt808.encode_register_response(phone, 3, reply_serial=9, result=0, auth_code="XYZ"),
    ]
    messages = Jt808Decoder().feed(b"".join(frames))
    assert [m.kind for m in messages] == [
        "terminal_response",
        "platform_response",
        "register_response",
    ]
    assert messages[0].extras == {"reply_serial": 7, "reply_id": 0x8105, "result": 0}
    assert messages[1].extras == {"reply_serial": 8, "reply_id": 0x0200, "result": 4}
    assert messages[2].extras == {"reply_serial": 9, "result": 0, "auth_code": "XYZ"}
    assert all(m.reply is None for m in messages)  # the server does not answer answers


def test_sub_packets_are_acknowledged_and_reassembled_out_of_order() -> None:
    fixes = [LocationReport(T0 + timedelta(seconds=i), 22.5, 114.0) for i in range(30)]
    body = jt808.encode_batch_body(fixes)
    packets = jt808.encode_packets(0x0704, "13800138000", 0xFFFE, body, packet_size=300)
    assert len(packets) == 4
    decoder = Jt808Decoder()
    events = decoder.feed(b"".join([packets[2], packets[0], packets[3], packets[1]]))
    fragments, whole = events[:4], events[4]
    assert [f.kind for f in fragments] == ["fragment"] * 4 and all(f.reply for f in fragments)
    assert whole.kind == "batch_location" and whole.serial == 0xFFFE and whole.reply is None
    assert [p.time for p in whole.positions] == [f.time for f in fixes]


def test_vendor_alarm_bits_from_configuration() -> None:
    profile = DeviceProfile(
        alarms=alarm_map_from_dict({"jt808_bits": {"15": "low_battery", "17": "removal"}})
    )
    report = LocationReport(T0, 30, 120, alarm_word=1 << 8 | 1 << 17 | 1 << 16)
    frame = encode_frame(0x0200, "13800138000", 1, jt808.encode_location_body(report))
    assert decode_one(frame.hex()).alarms == ("power_cut", "tamper")  # bits 16, 17 by default
    assert decode_one(frame.hex(), Jt808Decoder(profile)).alarms == (
        "power_cut",
        "tamper",
        "removal",
    )


# Location reports built byte by byte from JT/T 808-2013 (no captured frame with these
# reserved bits set is public): 7E | 0200 | body length | phone 013800138000 | serial |
# alarm DWORD | status 00000002 (fix valid) | lat 01D164A0 (30.5) | lon 06D01460 (114.3) |
# altitude 0032 | speed 0000 | course 0000 | 241105083000 (GMT+8) | 01 04 00000064 (mileage)
# 30 01 1F (signal) 31 01 0A (satellites) | [vendor item] | XOR | 7E.
TAMPER_BIT_16 = "7E020000280138001380000001000100000000000201D164A006D0146000320000000024110508300001040000006430011F31010A7B7E"  # noqa: E501
VIBRATION_BIT_15 = "7E020000280138001380000002000080000000000201D164A006D0146000320000000024110508300001040000006430011F31010AF97E"  # noqa: E501
ITEM_E6_ON = "7E0200002B0138001380000003000000000000000201D164A006D0146000320000000024110508300001040000006430011F31010AE601019D7E"  # noqa: E501
ITEM_E6_OFF = "7E0200002B0138001380000004000000000000000201D164A006D0146000320000000024110508300001040000006430011F31010AE601009B7E"  # noqa: E501


def test_reserved_bits_15_to_17_follow_the_common_tracker_convention() -> None:
    """Bit 15 vibration, bits 16–17 the light-sensor tamper alarm (as Traccar maps them)."""
    tamper = decode_one(TAMPER_BIT_16)
    assert tamper.alarms == ("tamper",) and tamper.positions[0].status["alarm_word"] == 1 << 16
    assert (tamper.positions[0].lat, tamper.positions[0].lon) == (30.5, 114.3)
    assert tamper.positions[0].time == datetime(2024, 11, 5, 0, 30, tzinfo=UTC)
    assert decode_one(VIBRATION_BIT_15).alarms == ("vibration",)
    reserved = {"jt808_bits": {"15": "", "16": "", "17": ""}}  # as the standard leaves them
    standard = DeviceProfile(alarms=alarm_map_from_dict(reserved))
    assert decode_one(TAMPER_BIT_16, Jt808Decoder(standard)).alarms == ()


def test_vendor_additional_information_items_raise_alarms_from_configuration() -> None:
    flag = DeviceProfile(alarms=alarm_map_from_dict({"jt808_items": {"0xE6": "removal"}}))
    assert decode_one(ITEM_E6_ON).alarms == ()  # no item is mapped by default
    assert decode_one(ITEM_E6_ON).positions[0].extras["0xe6"] == "01"  # but it is kept
    assert decode_one(ITEM_E6_ON, Jt808Decoder(flag)).alarms == ("removal",)
    assert decode_one(ITEM_E6_OFF, Jt808Decoder(flag)).alarms == ()
    coded = DeviceProfile(
        alarms=alarm_map_from_dict({"jt808_items": {"0xE6": {"0": "vibration", "1": "tamper"}}})
    )
    assert decode_one(ITEM_E6_ON, Jt808Decoder(coded)).alarms == ("tamper",)
    assert decode_one(ITEM_E6_OFF, Jt808Decoder(coded)).alarms == ("vibration",)


def test_device_clock_offset_from_profile() -> None:
    body = jt808.encode_location_body(LocationReport(T0, 30, 120), utc_offset=timedelta(0))
    frame = encode_frame(0x0200, "13800138000", 1, body)
    default = decode_one(frame.hex())
    utc_device = decode_one(frame.hex(), Jt808Decoder(DeviceProfile(utc_offset=timedelta(0))))
    assert utc_device.positions[0].time == T0
    assert default.positions[0].time == T0 - timedelta(hours=8)


def test_encode_frame_rejects_bad_fields() -> None:
    with pytest.raises(ValueError, match="phone"):
        encode_frame(0x0002, "12345678901234", 1)
    with pytest.raises(ValueError, match="body"):
        encode_frame(0x0200, "1", 1, bytes(1024))


@pytest.mark.parametrize(
    ("speed_kmh", "course", "field"), [(500.1, 0, "speed"), (50, 360, "course")]
)
def test_an_impossible_speed_or_course_is_refused(
    speed_kmh: float, course: int, field: str
) -> None:
    report = LocationReport(datetime(2026, 11, 1, tzinfo=UTC), 30.5, 114.3, speed_kmh, course)
    frame = encode_frame(0x0200, "13912345678", 1, jt808.encode_location_body(report))
    (error,) = Jt808Decoder().feed(frame)
    assert isinstance(error, FrameError) and error.reason.startswith(field)
