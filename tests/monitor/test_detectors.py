"""Each detector against hand-made tracks on the real engine."""

from __future__ import annotations

import pytest

from lienwatch.config import MonitorSettings
from lienwatch.domain.geo import offset_m
from lienwatch.monitor import (
    AlertStatus,
    DeviceSpec,
    Monitor,
    MonitorInputError,
    VehicleSpec,
    ZoneLibrary,
)
from lienwatch.monitor.detectors.base import evidence_text
from lienwatch.monitor.model import iso_utc
from tests.monitor.conftest import HOME, HOUR, T0, batch

WIRED = DeviceSpec("W1", "V1", "wired", 7200)
WIRELESS = DeviceSpec("S1", "V1", "wireless", 8 * HOUR)


def run(provinces, rows, *, devices=(WIRED,), vehicle=None, zones=None, until=None):
    monitor = Monitor(
        list(devices),
        [vehicle or VehicleSpec("V1", loan_id="L1")],
        provinces=provinces,
        zones=zones,
    )
    monitor.replay(batch(rows))
    monitor.flush(until)
    return monitor


def types(monitor):
    return [str(a.type) for a in monitor.alerts]


def parked(device, start_h, end_h, every_h=2, at=HOME):
    return [(device, T0 + h * HOUR, *at) for h in range(start_h, end_h, every_h)]


def says_why(alert, rule, thresholds, fixes):
    """The alert's evidence names its rule (and says it), the thresholds it compared (these
    among them) and the fixes it rests on, as (device, time)."""
    evidence = alert.evidence
    assert evidence["rule"] == rule and evidence["why"], evidence
    assert thresholds.items() <= evidence["thresholds"].items(), evidence["thresholds"]
    shown = [(f["device"], f["time"]) for f in evidence["fixes"]]
    assert shown == [(device, iso_utc(t)) for device, t in fixes], shown


def test_power_cut_then_silence_is_a_removal_and_goes_offline(provinces):
    rows = [*parked("W1", 0, 10), ("W1", T0 + 10 * HOUR, *HOME, "power_cut")]
    monitor = run(provinces, rows, until=T0 + 40 * HOUR)
    assert sorted(types(monitor)) == ["device_offline", "device_removed", "power_cut"]
    found = {str(a.type): a for a in monitor.alerts}
    removed, offline, cut = found["device_removed"], found["device_offline"], found["power_cut"]
    assert removed.start == T0 + 10 * HOUR and removed.raised_at == T0 + 14 * HOUR
    assert removed.province_en == "Zhejiang"
    alarm = [("W1", T0 + 10 * HOUR)]
    says_why(cut, "power_cut", {}, alarm)
    says_why(removed, "device_removed.silence",
             {"removal_silence_min_h": 1.0, "removal_silence_intervals": 2.0}, alarm)  # fmt: skip
    says_why(offline, "device_offline", {"offline_wired_h": 24.0}, alarm)


def test_power_cut_with_reports_continuing_is_not_a_removal(provinces):
    rows = [("W1", T0, *HOME, "power_cut"), *parked("W1", 2, 30)]
    assert types(run(provinces, rows)) == ["power_cut"]


def test_offline_resolves_when_the_device_reports_again(provinces):
    rows = [*parked("W1", 0, 4), *parked("W1", 40, 44)]
    [alert] = run(provinces, rows).alerts
    assert alert.type == "device_offline" and alert.status == AlertStatus.RESOLVED
    assert (alert.start, alert.end) == (T0 + 26 * HOUR, T0 + 40 * HOUR)


def test_long_stay_away_from_home_but_not_at_the_declared_home(provinces):
    away = offset_m(HOME[0], HOME[1], 5_000, 0)
    rows = parked("W1", 0, 80, at=(float(away[0]), float(away[1])))
    at_home = VehicleSpec("V1", home=HOME)
    [alert] = run(provinces, rows).alerts
    # raised as the clock passes 72 h, on the stay's first fix and its latest one then
    says_why(alert, "long_stay", {"long_stay_h": 72.0, "stay_radius_m": 200.0},
             [("W1", T0), ("W1", T0 + 72 * HOUR)])  # fmt: skip
    assert alert.evidence["stay"]["from"] == iso_utc(T0)
    assert (alert.start, alert.raised_at) == (T0, T0 + 72 * HOUR)
    assert types(run(provinces, rows, vehicle=at_home)) == ["long_stay"]
    assert types(run(provinces, parked("W1", 0, 80), vehicle=at_home)) == []
    # drift of 150 m around the spot stays one stay
    drift = [(d, t, lat + (0.0013 if i % 2 else 0), lon) for i, (d, t, lat, lon) in enumerate(rows)]
    assert types(run(provinces, drift)) == ["long_stay"]


def test_risk_zone_dwell_and_zone_validation(provinces):
    ring = [
        [HOME[1] + dx, HOME[0] + dy]
        for dx, dy in (
            (-0.002, -0.002),
            (0.002, -0.002),
            (0.002, 0.002),
            (-0.002, 0.002),
            (-0.002, -0.002),
        )
    ]
    feature = {
        "type": "Feature",
        "properties": {"zone_id": "Z1", "category": "pawnshop"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    zones = ZoneLibrary({"type": "FeatureCollection", "features": [feature]})
    elsewhere = (HOME[0] + 0.1, HOME[1])
    short = [("W1", T0, *elsewhere), ("W1", T0 + 600, *HOME), ("W1", T0 + 1200, *elsewhere)]
    assert types(run(provinces, short, zones=zones)) == []
    rows = [
        ("W1", T0, *elsewhere),
        ("W1", T0 + 600, *HOME),
        ("W1", T0 + 3000, *HOME),
        ("W1", T0 + 4000, *elsewhere),
    ]
    [alert] = run(provinces, rows, zones=zones).alerts
    assert alert.evidence["category"] == "pawnshop" and alert.end == T0 + 4000
    says_why(alert, "risk_zone_visit", {"risk_zone_dwell_min": 30.0},
             [("W1", T0 + 600), ("W1", T0 + 3000)])  # fmt: skip
    bad = {**feature, "properties": {"category": "casino"}}
    with pytest.raises(MonitorInputError, match="feature 1: category 'casino'"):
        ZoneLibrary({"type": "FeatureCollection", "features": [feature, bad]})
    bowtie = {
        **feature,
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
    }
    with pytest.raises(MonitorInputError, match="feature 0: invalid polygon"):
        ZoneLibrary({"type": "FeatureCollection", "features": [bowtie]})


def test_left_region_after_two_hours_and_back(provinces):
    shanghai = (31.2304, 121.4737)
    rows = [
        ("W1", T0, *HOME),
        ("W1", T0 + HOUR, *shanghai),
        ("W1", T0 + 2 * HOUR, *shanghai),
        ("W1", T0 + 3 * HOUR + 1, *shanghai),
        ("W1", T0 + 5 * HOUR, *HOME),
    ]
    vehicle = VehicleSpec("V1", region="33")
    [alert] = run(provinces, rows, vehicle=vehicle).alerts
    assert alert.type == "left_region" and alert.start == T0 + HOUR and alert.end == T0 + 5 * HOUR
    assert alert.province == "31"
    says_why(alert, "left_region", {"left_region_h": 2.0},
             [("W1", T0 + HOUR), ("W1", T0 + 3 * HOUR + 1)])  # fmt: skip


def test_position_jump_and_invalid_fixes_do_not_move_the_vehicle(provinces):
    beijing = (39.9042, 116.4074)
    rows = [
        ("W1", T0, *HOME),
        ("W1", T0 + 60, 0.0, 0.0),
        ("W1", T0 + 120, *beijing, "", False),
        ("W1", T0 + 600, *beijing),
    ]
    monitor = run(provinces, rows)
    assert types(monitor) == ["position_jump"]
    assert monitor.counts["invalid"] == 2
    assert monitor.alerts[0].evidence["kmh"] > 5_000
    says_why(monitor.alerts[0], "position_jump", {"jump_kmh": 250.0, "jump_min_km": 1.0},
             [("W1", T0), ("W1", T0 + 600)])  # fmt: skip


def test_tracker_left_behind_while_the_other_moves(provinces):
    work = offset_m(HOME[0], HOME[1], 8_000, 0)
    rows = [*parked("W1", 0, 6), *parked("S1", 0, 30, 8)]
    rows += [("S1", T0 + 30 * HOUR, float(work[0]), float(work[1]))]
    monitor = run(provinces, rows, devices=(WIRED, WIRELESS))
    mismatch = next(a for a in monitor.alerts if a.type == "tracker_mismatch")
    says_why(mismatch, "tracker_mismatch.silent", {"mismatch_m": 1000.0},
             [("S1", T0 + 30 * HOUR), ("W1", T0 + 4 * HOUR)])  # fmt: skip


def test_night_relocation_and_address_mismatch(provinces):
    far = offset_m(HOME[0], HOME[1], 30_000, 0)
    nights = [("W1", T0 + d * 24 * HOUR + 19 * HOUR, *HOME) for d in range(4)]  # 03:00 local
    nights += [
        ("W1", T0 + d * 24 * HOUR + 19 * HOUR, float(far[0]), float(far[1])) for d in range(4, 9)
    ]
    rows = sorted(
        nights + [("W1", t + 3 * HOUR, lat, lon) for _, t, lat, lon in nights], key=lambda r: r[1]
    )
    monitor = run(provinces, rows, vehicle=VehicleSpec("V1", home=HOME), until=rows[-1][1])
    moved, mismatch = (next(a for a in monitor.alerts if a.type == t)
                       for t in ("night_relocation", "address_mismatch"))  # fmt: skip
    night = T0 + 19 * HOUR
    says_why(moved, "night_relocation", {"night_move_km": 5.0, "night_move_nights": 3},
             [("W1", night), ("W1", night + 4 * 24 * HOUR), ("W1", night + 6 * 24 * HOUR)])
    says_why(mismatch, "address_mismatch", {"address_mismatch_km": 10.0},
             [("W1", night + 6 * 24 * HOUR)])  # fmt: skip


def test_unusual_area_far_outside_where_the_car_was_driven(provinces):
    far = offset_m(HOME[0], HOME[1], 100_000, 0)
    # 08:00 local on day 10, then the night there: raised at the night's end, 05:00 local
    rows = parked("W1", 0, 10 * 24) + parked("W1", 10 * 24, 10 * 24 + 30, 1, at=far)
    monitor = run(provinces, rows)
    [alert] = [a for a in monitor.alerts if a.type == "unusual_area"]
    says_why(alert, "unusual_area",
             {"unusual_distance_km": 50.0, "unusual_h": 6.0, "unusual_nights": 1},
             [("W1", T0 + 240 * HOUR), ("W1", T0 + 261 * HOUR)])  # fmt: skip


def test_cluster_of_three_borrowers(provinces):
    spot = offset_m(HOME[0], HOME[1], 3_000, 3_000)
    devices = [DeviceSpec(f"D{i}", f"V{i}", "wired", 7200) for i in range(3)]
    vehicles = [VehicleSpec(f"V{i}", borrower_id=f"B{i}") for i in range(3)]
    rows = [
        (f"D{i}", T0 + h * HOUR + i, float(spot[0]) + i * 1e-4, float(spot[1]))
        for i in range(3)
        for h in range(0, 40, 2)
    ]
    monitor = Monitor(devices, vehicles, provinces=provinces)
    monitor.replay(batch(rows))
    monitor.flush()
    clusters = [a for a in monitor.alerts if a.type == "cluster"]
    assert sorted(a.vehicle_id for a in clusters) == ["V0", "V1", "V2"]
    says_why(clusters[0], "cluster", {"cluster_h": 24.0, "cluster_vehicles": 3},
             [(f"D{i}", T0 + i) for i in range(3)])  # fmt: skip
    same_owner = [VehicleSpec(f"V{i}", borrower_id="B0") for i in range(3)]
    monitor = Monitor(devices, same_owner, provinces=provinces)
    monitor.replay(batch(rows))
    monitor.flush()
    assert [a for a in monitor.alerts if a.type == "cluster"] == []


def test_ltv_breach_per_product_cap_and_lifecycle(provinces):
    settings = MonitorSettings(products={"used": {"ltv_cap": 0.7}})
    vehicle = VehicleSpec("V1", loan_id="L1", product="used", exposure=12_345)
    monitor = Monitor([WIRED], [vehicle], settings=settings, provinces=provinces)
    monitor.update_ltv("L1", 0.75, T0)
    monitor.update_ltv("L1", 0.78, T0 + 10)
    [alert] = monitor.alerts
    assert alert.repeats == 1 and alert.exposure == 12_345 and alert.evidence["ltv"] == 0.78
    says_why(alert, "ltv_breach", {"ltv_cap": 0.7}, [])
    monitor.book.acknowledge(alert.id, by="agent7", at=T0 + 20)
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.status_by == "agent7"
    monitor.update_ltv("L1", 0.6, T0 + 30)
    assert alert.status == AlertStatus.RESOLVED and alert.end == T0 + 30
    monitor.update_ltv("L1", 0.9, T0 + 40)
    second = monitor.alerts[-1]
    monitor.book.mark_false_positive(second.id, by="analyst", at=T0 + 50)
    assert second.status == AlertStatus.FALSE_POSITIVE
    with pytest.raises(MonitorInputError, match="already false_positive"):
        monitor.book.acknowledge(second.id, by="x", at=T0 + 60)
    with pytest.raises(MonitorInputError, match="loan_id"):
        monitor.update_ltv("nope", 0.9, T0)


def test_a_tamper_alarm_in_a_tracker_frame_is_a_removal(provinces):
    """JT/T 808 reserved bit 16 (the light-sensor tamper alarm of car-loan trackers), decoded
    with the default profile, raises ``device_removed`` (issue 18)."""
    from lienwatch.telematics.protocols import Jt808Decoder
    from tests.telematics.test_jt808 import TAMPER_BIT_16

    [message] = Jt808Decoder().feed(bytes.fromhex(TAMPER_BIT_16))
    [position] = message.positions
    at = int(position.time.timestamp())
    fix = (position.lat, position.lon, ";".join(position.alarms))
    monitor = run(provinces, [("W1", at - HOUR, *fix[:2]), ("W1", at, *fix)])
    [removed] = monitor.alerts
    assert removed.type == "device_removed" and removed.start == at
    assert removed.evidence["alarm"] == "tamper"
    says_why(removed, "device_removed.alarm", {}, [(removed.device_id, removed.start)])


def test_evidence_in_one_line_names_the_rule_its_thresholds_and_fixes():
    fix = {"device": "W1", "time": "2026-07-01T00:00:00Z", "lat": 31.2, "lon": 121.4}
    evidence = {"rule": "long_stay", "why": "…", "thresholds": {"long_stay_h": 72.0},
                "fixes": [fix, {**fix, "lat": None, "lon": None}]}  # fmt: skip
    assert evidence_text(evidence) == ("long_stay (long_stay_h=72.0) on W1 2026-07-01T00:00:00Z "
                                       "31.2,121.4; W1 2026-07-01T00:00:00Z")  # fmt: skip
    # a payment anomaly's evidence has no fixes; an alert of no rule says nothing
    assert evidence_text({"rule": "payment_anomaly", "thresholds": {"top": 3},
                          "payments": []}) == "payment_anomaly (top=3)"  # fmt: skip
    assert evidence_text({"silent_h": 25}) == ""
