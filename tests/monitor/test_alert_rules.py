"""Alert-rule versions in the monitor: a rule set checked naming the key at fault, a running
monitor taking a new version with every vehicle's state kept (a stay, an offline clock), a
type switched off raising nothing, and the version recorded on the alerts opened under it."""

from __future__ import annotations

import pytest

from lienwatch.config import MonitorSettings
from lienwatch.errors import LienwatchError
from lienwatch.monitor import DeviceSpec, Monitor, VehicleSpec
from lienwatch.monitor.rules import parse_alert_rules
from tests.monitor.conftest import HOME, HOUR, T0, batch

LOT = (30.29, 120.21)  # 6 km from home: not a known place


def parked(hours: float) -> list[tuple]:
    """A wired tracker reporting every 2 h from the lot for ``hours``."""
    return [("W1", T0 + int(h * HOUR), *LOT) for h in range(0, int(hours) + 1, 2)]


def monitor(provinces, settings: MonitorSettings | None = None) -> Monitor:
    return Monitor([DeviceSpec("W1", "V1", "wired", 7200)], [VehicleSpec("V1", home=HOME)],
                   settings=settings, provinces=provinces)  # fmt: skip


def rules(version: int, **thresholds) -> MonitorSettings:
    document = {"version": version, "thresholds": thresholds}
    return parse_alert_rules(document).applied_to(MonitorSettings())


def test_a_stay_going_on_is_judged_by_the_new_length_from_its_start(provinces):
    running = monitor(provinces)
    running.ingest(batch(parked(50)))
    running.advance(T0 + 50 * HOUR + 600)
    assert running.alerts == []  # 50 h: not long under the configured 72 h
    running.use_rules(rules(3, long_stay_h=48))
    running.advance(T0 + 51 * HOUR + 600)
    [alert] = running.alerts
    assert (alert.type, alert.start, alert.raised_at) == ("long_stay", T0, T0 + 48 * HOUR)
    assert alert.evidence["rule_set"] == 3
    assert alert.evidence["thresholds"]["long_stay_h"] == 48
    assert alert.evidence["stay"]["from"] == "2026-07-01T00:00:00Z"  # the stay kept its start


def test_an_offline_clock_runs_on_to_the_new_limit_from_the_last_fix(provinces):
    running = monitor(provinces)
    running.ingest(batch(parked(4)))
    running.advance(T0 + 10 * HOUR)
    assert running.alerts == []  # 6 h silent: the configured 24 h
    running.use_rules(rules(1, offline_wired_h=2, offline_min_intervals=1))
    running.advance(T0 + 10 * HOUR + 60)
    [alert] = running.alerts
    assert alert.type == "device_offline" and alert.start == T0 + 6 * HOUR
    assert alert.evidence["fixes"][0]["time"] == "2026-07-01T04:00:00Z"  # the fix before


def test_a_jump_is_judged_by_the_new_speed_from_the_next_fix(provinces):
    north = 0.09  # about 10 km of latitude
    legs = [("W1", T0 + k * 180, LOT[0] + k * north, LOT[1]) for k in range(3)]  # 200 km/h
    running = monitor(provinces)
    running.ingest(batch(legs[:2]))
    running.advance(T0 + HOUR)  # past the reorder window: the first leg judged
    assert running.alerts == []  # under the configured 250 km/h
    running.use_rules(rules(2, jump_kmh=150))
    running.ingest(batch(legs[2:]))
    running.advance(T0 + 2 * HOUR)
    [alert] = running.alerts
    assert (alert.type, alert.start) == ("position_jump", T0 + 360)
    assert alert.evidence["kmh"] == pytest.approx(200, abs=1)
    assert alert.evidence["thresholds"]["jump_kmh"] == 150


def test_a_type_switched_off_is_not_raised_and_alerts_before_record_no_version(provinces):
    cut = [("W1", T0, *LOT, "power_cut"), ("W1", T0 + 60, *LOT, "")]
    configured = monitor(provinces)
    configured.replay(batch(cut))
    configured.flush()
    assert [(a.type, "rule_set" in a.evidence) for a in configured.alerts] == [
        ("power_cut", False)]
    off = parse_alert_rules({"version": 2, "thresholds": {"enabled": {"power_cut": False}}})
    switched_off = monitor(provinces, off.applied_to(MonitorSettings()))
    switched_off.replay(batch(cut))
    switched_off.flush()
    assert "power_cut" not in {a.type for a in switched_off.alerts}


@pytest.mark.parametrize(("document", "message"), [
    ({"thresholds": {}}, "document.version: Field required"),
    ({"version": 0}, "document.version: Input should be greater than or equal to 1"),
    ({"version": 2, "thresholds": {"long_stay_h": -1}},
     "document.thresholds.long_stay_h: Input should be greater than 0"),
    ({"version": 2, "thresholds": {"enabled": {"teleport": False}}},
     "document.thresholds.enabled: Value error, unknown alert type 'teleport'"),
    ({"version": 2, "products": {"NEV": {"offline_wired": 3}}},
     "document.products.NEV.offline_wired: Extra inputs are not permitted"),
    ({"version": 2, "name": "mine"}, "document.name: Extra inputs are not permitted"),
])  # fmt: skip
def test_a_bad_rule_set_is_refused_naming_the_key(document, message):
    with pytest.raises(LienwatchError) as refused:
        parse_alert_rules(document)
    assert str(refused.value) == message


def test_the_version_is_not_a_setting_of_the_file():
    with pytest.raises(ValueError, match=r"rule_set\n  Value error, set by lienwatch"):
        MonitorSettings.model_validate({"rule_set": 4})
