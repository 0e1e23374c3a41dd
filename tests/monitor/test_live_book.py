"""What a long-running monitor needs from the book and the engine: changes to save, seeded
alerts continued, people's decisions taken, a fleet that changes, clusters raised once."""

from __future__ import annotations

import dataclasses

import pytest

from lienwatch.config import MonitorSettings
from lienwatch.domain.geo import offset_m
from lienwatch.monitor import (
    AlertStatus,
    AlertType,
    DeviceSpec,
    Monitor,
    MonitorInputError,
    VehicleSpec,
)
from lienwatch.monitor.lifecycle import Decision
from lienwatch.monitor.model import iso_utc
from tests.monitor.conftest import HOME, HOUR, T0, batch

LIVE = MonitorSettings(reorder_window_s=0)
WIRED = DeviceSpec("W1", "V1", "wired", 1800)


def power_cut_monitor(provinces, vehicle=None):
    monitor = Monitor(
        [WIRED], [vehicle or VehicleSpec("V1", loan_id="L1")], settings=LIVE, provinces=provinces
    )
    monitor.ingest(batch([("W1", T0, *HOME, "power_cut")]))
    monitor.advance(T0)
    return monitor


def test_changed_alerts_are_taken_once_and_closed_ones_forgotten(provinces):
    monitor = power_cut_monitor(provinces)
    [alert] = monitor.book.take_changed()
    assert alert.type == AlertType.POWER_CUT and monitor.book.take_changed() == []
    monitor.ingest(batch([("W1", T0 + 60, *HOME, "power_cut")]))
    assert monitor.book.take_changed() == [alert] and alert.repeats == 1
    monitor.ingest(batch([("W1", T0 + 60, *HOME, "power_cut")]))  # a duplicate: dropped
    assert monitor.book.take_changed() == [] and monitor.counts["late"] == 1
    monitor.book.resolve(alert.id, by="agent7", at=T0 + 120)
    assert monitor.book.forget_closed() == 0  # changed and not yet taken: kept
    assert monitor.book.take_changed() == [alert]
    assert monitor.book.forget_closed() == 1 and monitor.alerts == []


def test_a_seeded_alert_is_continued_and_history_replayed_over_it_changes_nothing(provinces):
    stored = power_cut_monitor(provinces).alerts[0]
    stored = dataclasses.replace(stored, repeats=4, evidence=dict(stored.evidence))
    monitor = Monitor([WIRED], [VehicleSpec("V1", loan_id="L1")], settings=LIVE,
                      provinces=provinces)  # fmt: skip
    monitor.book.seed([stored])
    monitor.replay(batch([("W1", T0, *HOME, "power_cut")]))  # the warm-up sees it again
    assert monitor.book.take_changed() == [] and stored.repeats == 4
    monitor.ingest(batch([("W1", T0 + 60, *HOME, "power_cut")]))
    assert monitor.alerts == [stored] and stored.repeats == 5
    with pytest.raises(MonitorInputError, match="already in the book"):
        monitor.book.seed([stored])
    resolved = dataclasses.replace(stored, status=AlertStatus.RESOLVED)
    with pytest.raises(MonitorInputError, match="status: seeded alert"):
        Monitor([WIRED], [], provinces=provinces).book.seed([resolved])


def test_a_decision_made_in_the_store_closes_the_alert_and_the_next_one_opens(provinces):
    monitor = power_cut_monitor(provinces)
    [first] = monitor.alerts
    acknowledged = Decision(first.id, AlertStatus.ACKNOWLEDGED, "agent7", T0 + 30, None)
    monitor.book.apply(acknowledged)
    monitor.ingest(batch([("W1", T0 + 60, *HOME, "power_cut")]))
    assert first.status == AlertStatus.ACKNOWLEDGED and first.repeats == 1
    monitor.book.apply(Decision(first.id, AlertStatus.RESOLVED, "agent7", T0 + 90, T0 + 90))
    assert (first.status, first.end, monitor.book.open_count) == (AlertStatus.RESOLVED, T0 + 90, 0)
    monitor.ingest(batch([("W1", T0 + 120, *HOME, "power_cut")]))
    assert [a.status for a in monitor.alerts] == [AlertStatus.RESOLVED, AlertStatus.OPEN]
    assert monitor.book.apply(Decision("nope", AlertStatus.RESOLVED, "x", 0, None)) is None


def test_a_refused_alert_is_replaced_by_the_stored_one(provinces):
    mine = power_cut_monitor(provinces).alerts[0]
    other = power_cut_monitor(provinces)
    theirs = dataclasses.replace(other.alerts[0], id="V1:power_cut:elsewhere")
    monitor = power_cut_monitor(provinces)
    monitor.book.replace(monitor.alerts[0].id, theirs)
    assert monitor.alerts == [theirs] and monitor.book.open_alerts() == [theirs]
    assert mine.id != theirs.id and monitor.book.take_changed() == []


def test_a_fleet_update_carries_exposure_adds_devices_and_forgets_vehicles(provinces):
    monitor = power_cut_monitor(provinces, VehicleSpec("V1", loan_id="L1", exposure=100))
    [alert] = monitor.alerts
    monitor.book.take_changed()
    second = DeviceSpec("S1", "V1", "wireless", 3600)
    monitor.update_fleet([WIRED, second], [VehicleSpec("V1", loan_id="L1", exposure=250)])
    assert alert.exposure == 250 and monitor.book.take_changed() == [alert]
    monitor.ingest(batch([("S1", T0 + 60, *HOME)]))
    monitor.advance(T0 + 60)
    assert monitor.counts["unknown_devices"] == 0 and monitor.counts["fixes"] == 2
    # the wired tracker was unbound: V1 starts afresh (no removal raised from its old clock)
    monitor.update_fleet([second], [VehicleSpec("V1", loan_id="L1", exposure=250)])
    monitor.advance(T0 + 40 * HOUR)
    assert {str(a.type) for a in monitor.alerts} == {"power_cut"}
    with pytest.raises(MonitorInputError, match="area"):
        monitor.update_fleet([second], [VehicleSpec("V1", area="yard")])


def parked_together() -> tuple[list[DeviceSpec], list[VehicleSpec], list[tuple]]:
    """Three cars of three borrowers parked together for 40 hours, then V0 leaves."""
    return at_a_yard([range(0, 40)] * 3, leaves=41)


def at_a_yard(
    hours: list[range], leaves: int
) -> tuple[list[DeviceSpec], list[VehicleSpec], list[tuple]]:
    """Cars of as many borrowers at one yard, car ``i`` reporting every two hours of
    ``hours[i]`` (its steps); V0 goes home at hour ``leaves``, which ends their group."""
    spot = offset_m(HOME[0], HOME[1], 3_000, 3_000)
    devices = [DeviceSpec(f"D{i}", f"V{i}", "wired", 7200) for i in range(len(hours))]
    vehicles = [VehicleSpec(f"V{i}", borrower_id=f"B{i}") for i in range(len(hours))]
    rows = [(f"D{i}", T0 + h * HOUR + i, float(spot[0]) + i * 1e-4, float(spot[1]))
            for i, span in enumerate(hours) for h in span[::2]]  # fmt: skip
    rows.append(("D0", T0 + leaves * HOUR, *HOME))
    return devices, vehicles, rows


def test_the_clock_raises_an_ended_cluster_once(provinces):
    devices, vehicles, rows = parked_together()
    monitor = Monitor(devices, vehicles, settings=LIVE, provinces=provinces)
    for hour in range(60):
        monitor.ingest(batch([r for r in rows if hour * HOUR <= r[1] - T0 < (hour + 1) * HOUR]))
        monitor.advance(T0 + (hour + 1) * HOUR)
    clusters = [a for a in monitor.alerts if a.type == AlertType.CLUSTER]
    assert sorted(a.vehicle_id for a in clusters) == ["V0", "V1", "V2"]
    assert {a.status for a in clusters} == {AlertStatus.RESOLVED}


def hourly(monitor: Monitor, rows: list[tuple], hours: int) -> None:
    """Feed ``rows`` an hour at a time, the clock ticking at the end of each hour."""
    for hour in range(hours):
        monitor.ingest(batch([r for r in rows if hour * HOUR <= r[1] - T0 < (hour + 1) * HOUR]))
        monitor.advance(T0 + (hour + 1) * HOUR)


def together_again(days: int) -> tuple[list[DeviceSpec], list[VehicleSpec], list[tuple]]:
    """Three cars of three borrowers at one yard for 40 hours of each of ``days`` days'
    first two days, every third day; each goes home between (a ring meeting again)."""
    spot = offset_m(HOME[0], HOME[1], 3_000, 3_000)
    devices = [DeviceSpec(f"D{i}", f"V{i}", "wired", 7200) for i in range(3)]
    vehicles = [VehicleSpec(f"V{i}", borrower_id=f"B{i}") for i in range(3)]
    rows = []
    for i in range(3):
        for day in range(0, days, 3):
            t = T0 + day * 24 * HOUR + i
            rows += [(f"D{i}", t + h * HOUR, float(spot[0]) + i * 1e-4, float(spot[1]))
                     for h in range(0, 42, 2)]  # fmt: skip
            home = offset_m(HOME[0], HOME[1], 500 * i, 0)
            rows += [(f"D{i}", t + h * HOUR, float(home[0]), float(home[1]))
                     for h in range(43, 72, 2)]  # fmt: skip
    return devices, vehicles, rows


@pytest.mark.parametrize("run", ["streaming", "batch"])
def test_the_same_vehicles_together_again_are_another_cluster(provinces, run):
    """Each meeting is its own group, streamed or in batch: raised, then resolved when a car
    leaves (the second meeting is not taken for the first, already ended, even while the
    first's stays are still within the look-back)."""
    devices, vehicles, rows = together_again(6)
    settings = LIVE.model_copy(update={"cluster_lookback_days": 10.0})
    monitor = Monitor(devices, vehicles, settings=settings, provinces=provinces)
    if run == "streaming":
        hourly(monitor, rows, 6 * 24)
    else:
        monitor.replay(batch(rows))
        monitor.flush()
    clusters = [a for a in monitor.alerts if a.type == AlertType.CLUSTER]
    assert sorted(a.vehicle_id for a in clusters) == ["V0", "V0", "V1", "V1", "V2", "V2"]
    assert {a.status for a in clusters} == {AlertStatus.RESOLVED}
    assert sorted({a.start for a in clusters}) == [T0 + 2, T0 + 3 * 24 * HOUR + 2]


def test_a_group_that_grows_starts_each_cars_alert_when_that_car_joined(provinces):
    """Three cars together from T0, a fourth from 20 hours later: streamed, the hourly pass
    raised the three on the first day and the fourth when it had stayed long enough; a batch
    over the three days sees the four at once and gives each car the same start, id and
    evidence (the group of four, together since the fourth came)."""
    devices, vehicles, rows = at_a_yard([range(0, 60)] * 3 + [range(20, 60)], leaves=61)

    def clusters(monitor: Monitor) -> list[tuple]:
        return sorted((a.id, a.vehicle_id, a.status, a.start, a.end, a.repeats,
                       a.evidence["vehicles"], a.evidence["together_since"])
                      for a in monitor.alerts if a.type == AlertType.CLUSTER)  # fmt: skip

    streamed = Monitor(devices, vehicles, settings=LIVE, provinces=provinces)
    hourly(streamed, rows, 72)
    whole = Monitor(devices, vehicles, settings=LIVE, provinces=provinces)
    whole.replay(batch(rows))
    whole.flush()
    assert clusters(streamed) == clusters(whole)
    joined = T0 + 20 * HOUR + 3
    assert [(c[1], c[3]) for c in clusters(whole)] == [
        ("V0", T0 + 2), ("V1", T0 + 2), ("V2", T0 + 2), ("V3", joined)]
    assert {c[2] for c in clusters(whole)} == {AlertStatus.RESOLVED}
    assert {c[7] for c in clusters(whole)} == {iso_utc(joined)}


def test_a_monitor_keeps_the_long_stays_of_its_look_back_only(provinces):
    """Months of meetings: the stays the cluster pass reads, the ended groups it remembers
    and the checkpoint stay as large as a few days' worth, and every meeting is raised."""
    from lienwatch.monitor.checkpoint import dump_state

    devices, vehicles, rows = together_again(60)
    monitor = Monitor(devices, vehicles, settings=LIVE, provinces=provinces)
    by_hour: dict[int, list[tuple]] = {}
    for row in rows:
        by_hour.setdefault((row[1] - T0) // HOUR, []).append(row)
    sizes, clusters = [], []
    for hour in range(60 * 24):
        monitor.ingest(batch(by_hour.get(hour, [])))
        monitor.advance(T0 + (hour + 1) * HOUR)
        # what the live monitor does each tick: save the changes, forget the closed alerts
        clusters += [a for a in monitor.book.take_changed() if a.type == AlertType.CLUSTER]
        monitor.book.forget_closed()
        if hour % (20 * 24) == 20 * 24 - 1:
            sizes.append(len(dump_state(monitor)))
    lookback = LIVE.cluster_lookback_days * 24 * HOUR
    kept = monitor.long_stays()
    assert kept and all(s.last >= T0 + 60 * 24 * HOUR - lookback - HOUR for s in kept)
    assert len(kept) <= 3 * 2 and len(monitor._clustered) <= 2
    assert max(sizes) < min(sizes) * 1.1, sizes  # not growing with the months
    assert len({(a.id, a.vehicle_id) for a in clusters}) == 3 * 20


def test_a_stay_reported_late_is_grouped_within_the_look_back_only(provinces):
    """V2's tracker uploads its 40 hours at the yard late (a blind-zone upload): within
    ``cluster_lookback_days`` of V0 leaving, the three cars are a group; later, V0's and
    V1's stays are forgotten and V2's alone is no group."""

    def late_by(hours: int) -> list[str]:
        devices, vehicles, rows = parked_together()
        rows = [r for r in rows if r[0] != "D2"] + [r for r in rows if r[0] == "D2"]
        monitor = Monitor(devices, vehicles, settings=LIVE, provinces=provinces)
        hourly(monitor, [r for r in rows if r[0] != "D2"], 41 + hours)
        monitor.ingest(batch([r for r in rows if r[0] == "D2"]))
        monitor.advance(T0 + (42 + hours) * HOUR)
        return sorted(a.vehicle_id for a in monitor.alerts if a.type == AlertType.CLUSTER)

    within = int(LIVE.cluster_lookback_days * 24) - 6
    assert late_by(within) == ["V0", "V1", "V2"]
    assert late_by(within + 12) == []
    # all three uploaded together, older than the look-back: compared once, then forgotten
    devices, vehicles, rows = parked_together()
    monitor = Monitor(devices, vehicles, settings=LIVE, provinces=provinces)
    monitor.advance(T0 + (41 + within + 12) * HOUR)
    monitor.ingest(batch(rows))
    monitor.advance(T0 + (42 + within + 12) * HOUR)
    clusters = [a for a in monitor.alerts if a.type == AlertType.CLUSTER]
    assert sorted(a.vehicle_id for a in clusters) == ["V0", "V1", "V2"]
    assert [s.vehicle_id for s in monitor.long_stays()] == ["V1", "V2"]  # V0's ended: gone


def test_what_stays_of_a_group_after_its_member_is_forgotten_is_not_raised_again(provinces):
    """Four cars together for 40 hours, then V0 leaves and the three others stay for a week:
    the group ended when V0 left, streamed as in batch. Once V0's stay is forgotten (past
    the look-back), the three still there are what is left of that group, not a new one."""
    devices, vehicles, rows = at_a_yard([range(0, 40)] + [range(0, 8 * 24)] * 3, leaves=41)

    def clusters(monitor: Monitor) -> list[tuple]:
        return sorted((a.vehicle_id, a.status, a.start, a.end)
                      for a in monitor.alerts if a.type == AlertType.CLUSTER)  # fmt: skip

    streamed = Monitor(devices, vehicles, settings=LIVE, provinces=provinces)
    hourly(streamed, rows, 8 * 24)
    streamed.flush()
    whole = Monitor(devices, vehicles, settings=LIVE, provinces=provinces)
    whole.replay(batch(rows))
    whole.flush()
    assert [s.vehicle_id for s in streamed.long_stays()] == ["V1", "V2", "V3"]  # V0's gone
    assert clusters(streamed) == clusters(whole)
    assert [c[:2] for c in clusters(whole)] == [(f"V{i}", AlertStatus.RESOLVED) for i in range(4)]


def test_what_stays_of_a_group_whose_member_another_partition_forgot_is_not_raised_again(
    provinces,
):
    """The case above scaled out: V0 in one partition, V1–V3 in another, sharing their long
    stays and the newest end of a stay each forgot. When V0's partition forgets V0's stay, the
    three still there are what is left of the group in the other partition too."""
    devices, vehicles, rows = at_a_yard([range(0, 40)] + [range(0, 8 * 24)] * 3, leaves=41)
    whole = Monitor(devices, vehicles, settings=LIVE, provinces=provinces)
    parts = [Monitor(devices[:1], vehicles[:1], settings=LIVE, provinces=provinces),
             Monitor(devices[1:], vehicles[1:], settings=LIVE, provinces=provinces)]  # fmt: skip
    for hour in range(8 * 24):
        fixes = [r for r in rows if hour * HOUR <= r[1] - T0 < (hour + 1) * HOUR]
        whole.ingest(batch(fixes))
        for part, mine in zip(parts, ({"D0"}, {"D1", "D2", "D3"}), strict=True):
            part.ingest(batch([r for r in fixes if r[0] in mine]))
        for part, other in zip(parts, reversed(parts), strict=True):
            part.neighbours = other.long_stays()
            part.neighbours_forgotten_until = other.forgotten_until
        for monitor in (whole, *parts):
            monitor.advance(T0 + (hour + 1) * HOUR)

    def clusters(*monitors: Monitor) -> list[tuple]:
        found = [a for m in monitors for a in m.alerts if a.type == AlertType.CLUSTER]
        return sorted((a.id, a.vehicle_id, a.status, a.start, a.end) for a in found)

    assert parts[0].forgotten_until > T0  # V0's stay was forgotten by its own partition
    assert len(clusters(whole)) == 4
    assert clusters(*parts) == clusters(whole)


def test_monitors_of_two_partitions_sharing_long_stays_raise_the_whole_fleets_clusters(
    provinces,
):
    """V0 and V1 in one partition, V2 in another: each monitor raises the cluster on its own
    vehicles, with the ids and evidence one monitor over the whole fleet gives."""
    devices, vehicles, rows = parked_together()
    whole = Monitor(devices, vehicles, settings=LIVE, provinces=provinces)
    parts = [Monitor(devices[:2], vehicles[:2], settings=LIVE, provinces=provinces),
             Monitor(devices[2:], vehicles[2:], settings=LIVE, provinces=provinces)]  # fmt: skip
    alone = Monitor(devices[2:], vehicles[2:], settings=LIVE, provinces=provinces)
    for hour in range(60):
        fixes = [r for r in rows if hour * HOUR <= r[1] - T0 < (hour + 1) * HOUR]
        whole.ingest(batch(fixes))
        alone.ingest(batch([r for r in fixes if r[0] == "D2"]))
        for part, mine in zip(parts, (("D0", "D1"), ("D2",)), strict=True):
            part.ingest(batch([r for r in fixes if r[0] in mine]))
        shared = [part.long_stays() for part in parts]
        parts[0].neighbours, parts[1].neighbours = shared[1], shared[0]
        for monitor in (whole, alone, *parts):
            monitor.advance(T0 + (hour + 1) * HOUR)

    def clusters(*monitors: Monitor) -> list:
        found = [a for m in monitors for a in m.alerts if a.type == AlertType.CLUSTER]
        return sorted((a.id, a.vehicle_id, a.status, a.start, a.end, a.evidence["vehicles"])
                      for a in found)  # fmt: skip

    assert len(clusters(whole)) == 3
    assert clusters(*parts) == clusters(whole)
    assert [a.vehicle_id for a in parts[1].alerts if a.type == AlertType.CLUSTER] == ["V2"]
    assert clusters(alone) == []  # without the neighbours' stays V2 sees no cluster


def test_a_vehicles_state_survives_a_change_of_its_spec(provinces):
    """Parked in Zhejiang since T0; ten hours in, its product, home and booked province (to
    Shanghai) change (a fleet reload): the long stay still counts from T0, not from the
    change, under the new product's 48 h; the car is outside its new province from then."""
    settings = MonitorSettings(reorder_window_s=0, products={"short": {"long_stay_h": 48}})
    before = VehicleSpec("V1", loan_id="L1", product="long", region="33", home=None)
    after = dataclasses.replace(before, product="short", region="31", home=(HOME[0], HOME[1]))
    parked = offset_m(HOME[0], HOME[1], 20_000, 0)
    wired = DeviceSpec("W1", "V1", "wired", 3600)
    monitor = Monitor([wired], [before], settings=settings, provinces=provinces)
    for hour in range(60):
        if hour == 10:
            monitor.update_fleet([wired], [after])
        monitor.ingest(batch([("W1", T0 + hour * HOUR, float(parked[0]), float(parked[1]))]))
        monitor.advance(T0 + hour * HOUR)
    [stay] = [a for a in monitor.alerts if a.type == AlertType.LONG_STAY]
    assert stay.start == T0  # a vehicle started afresh would not be due before T0 + 58 h
    assert stay.loan_id == "L1" and stay.evidence["thresholds"]["long_stay_h"] == 48
    [region] = [a for a in monitor.alerts if a.type == AlertType.LEFT_REGION]
    assert region.evidence["permitted"] == "31" and region.start == T0 + 10 * HOUR
