"""GPS tracks, vectorized: each car's days become stays and trips, trackers sample them.

A car's timeline is a sequence of *segments* that tile its tracked time: stays (parked at a
spot) and trips (driving from one point to another along a gently bent line). Four segments
make a day — parked at last night's spot, a trip out, parked at the destination, a trip to
tonight's spot — with zero-length trips dropped on days the car does not move. All cars and
days are built at once as ``(vehicles, days)`` arrays. Trackers then sample the timeline:
the wired one on the segments' own cadence (every ``moving_interval_s`` while driving, every
``parked_interval_s`` while parked), the wireless one on a fixed clock, looking up the segment
under each fix time with :func:`numpy.searchsorted`. No Python loop runs per fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from lienwatch.domain.geo import haversine_m, offset_m
from lienwatch.domain.positions import PositionColumns
from lienwatch.sim.book import LoanPlan
from lienwatch.sim.places import City, safely_in
from lienwatch.sim.stories import Story

IDLE, COMMUTE, OUTING, RELOCATE, HOLD = range(5)
STAY, TRIP = 0, 1
HOUR_S = 3_600
ROUTE_FACTOR = 1.3  # road distance over straight-line distance
POWER_CUT = "power_cut"
_CHUNKS = 16


@dataclass(frozen=True, slots=True)
class TrackSettings:
    start: date
    days: int
    moving_interval_s: int
    parked_interval_s: int
    wireless_interval_s: int
    time_zone: str = "Asia/Shanghai"


@dataclass(slots=True)
class Segments:
    """The timeline of every car, sorted by (vehicle, start); times in epoch seconds."""

    vehicle: np.ndarray
    start: np.ndarray
    end: np.ndarray
    kind: np.ndarray
    lat0: np.ndarray
    lon0: np.ndarray
    lat1: np.ndarray
    lon1: np.ndarray
    speed_kmh: np.ndarray  # average road speed of a trip
    bend: np.ndarray  # lateral bulge of a trip, as a fraction of its length
    course: np.ndarray  # heading a parked car keeps

    def take(self, mask: np.ndarray) -> Segments:
        return Segments(*(getattr(self, f)[mask] for f in self.__slots__))


@dataclass(frozen=True, slots=True)
class TrackFacts:
    """Times (epoch seconds) the ground truth needs, by vehicle index."""

    day_epoch: np.ndarray  # local midnight of each window day, plus the window end
    depart: np.ndarray  # (vehicles, days): first departure of the day
    arrive: np.ndarray  # (vehicles, days): arrival of the first trip
    wired_end: dict[int, int]  # last wired fix of a device that stopped (pledge, removal)
    wireless_end: dict[int, int]  # last wireless fix of a device that stopped


def local_midnights(start: date, days: int, time_zone: str) -> np.ndarray:
    """Epoch seconds of local midnight for each window day and the day after the last."""
    zone = ZoneInfo(time_zone)
    return np.array(
        [
            int(datetime.combine(start + timedelta(days=d), time(), zone).timestamp())
            for d in range(days + 1)
        ],
        dtype=np.int64,
    )


class _DayPlanner:
    """Builds the ``(vehicles, days)`` day plans and turns them into segments."""

    def __init__(
        self,
        rng: np.random.Generator,
        plans: list[LoanPlan],
        stories: list[Story],
        settings: TrackSettings,
        cities: list[City],
    ) -> None:
        self.rng = rng
        self.settings = settings
        self.stories = stories
        v, d = len(plans), settings.days
        self.shape = (v, d)
        self.province = np.array([int(p.city.province_code) for p in plans])
        self.home_lat = np.repeat(np.array([p.borrower.home_lat for p in plans])[:, None], d, 1)
        self.home_lon = np.repeat(np.array([p.borrower.home_lon for p in plans])[:, None], d, 1)
        self.work_lat = np.repeat(np.array([p.borrower.work_lat for p in plans])[:, None], d, 1)
        self.work_lon = np.repeat(np.array([p.borrower.work_lon for p in plans])[:, None], d, 1)
        self.day_epoch = local_midnights(settings.start, d, settings.time_zone)
        self.far_city = _weekend_cities(rng, plans, cities)

    def build(self) -> tuple[Segments, np.ndarray, np.ndarray]:
        kind, dest_lat, dest_lon = self._routine()
        base_lat, base_lon = self.home_lat.copy(), self.home_lon.copy()
        for v, story in enumerate(self.stories):
            self._apply_story(v, story, kind, dest_lat, dest_lon, base_lat, base_lon)
        prev_lat = np.concatenate([self.home_lat[:, :1], base_lat[:, :-1]], axis=1)
        prev_lon = np.concatenate([self.home_lon[:, :1], base_lon[:, :-1]], axis=1)
        times = self._times(kind, prev_lat, prev_lon, dest_lat, dest_lon, base_lat, base_lon)
        segments = self._segments(times, prev_lat, prev_lon, dest_lat, dest_lon, base_lat, base_lon)
        return segments, times[0], times[1]

    def _routine(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Commutes on most weekdays, outings on half the weekend days, else a day at home."""
        rng, (v, d) = self.rng, self.shape
        weekday = np.array(
            [(self.settings.start + timedelta(days=i)).weekday() < 5 for i in range(d)]
        )
        draw = rng.random((v, d))
        kind = np.where(
            weekday, np.where(draw < 0.9, COMMUTE, IDLE), np.where(draw < 0.5, OUTING, IDLE)
        )
        dest_lat = np.where(kind == COMMUTE, self.work_lat, self.home_lat)
        dest_lon = np.where(kind == COMMUTE, self.work_lon, self.home_lon)
        # Outings: mostly 2–25 km around home; sometimes to another city of the same province.
        radius = np.sqrt(rng.uniform(2_000**2, 25_000**2, (v, d)))
        bearing = rng.uniform(0, 2 * np.pi, (v, d))
        out_lat, out_lon = offset_m(
            self.home_lat, self.home_lon, radius * np.sin(bearing), radius * np.cos(bearing)
        )
        has_far = ~np.isnan(self.far_city[0])[:, None] & (rng.random((v, d)) < 0.12)
        jitter_lat, jitter_lon = offset_m(
            np.repeat(self.far_city[0][:, None], d, 1),
            np.repeat(self.far_city[1][:, None], d, 1),
            *rng.uniform(-2_500, 2_500, (2, v, d)),
        )
        out_lat = np.where(has_far, jitter_lat, out_lat)
        out_lon = np.where(has_far, jitter_lon, out_lon)
        outing = kind == OUTING
        ok = _path_in_province(
            self.home_lat[outing],
            self.home_lon[outing],
            out_lat[outing],
            out_lon[outing],
            np.broadcast_to(self.province[:, None], (v, d))[outing],
        )
        rows, cols = np.nonzero(outing)
        kind[rows[~ok], cols[~ok]] = IDLE
        good = kind == OUTING
        dest_lat[good], dest_lon[good] = out_lat[good], out_lon[good]
        return kind, dest_lat, dest_lon

    def _apply_story(
        self, v: int, story: Story, kind, dest_lat, dest_lon, base_lat, base_lon
    ) -> None:
        def relocate(day: int, lat: float, lon: float, hold_until: int) -> None:
            kind[v, day] = RELOCATE
            kind[v, day + 1 : hold_until] = HOLD
            dest_lat[v, day:hold_until], dest_lon[v, day:hold_until] = lat, lon
            base_lat[v, day:hold_until], base_lon[v, day:hold_until] = lat, lon

        if story.pledge:
            relocate(story.pledge.day, story.pledge.lat, story.pledge.lon, self.shape[1])
        if story.move:
            m = story.move
            for grid, value in (
                (self.home_lat, m.home_lat),
                (self.home_lon, m.home_lon),
                (self.work_lat, m.work_lat),
                (self.work_lon, m.work_lon),
            ):
                grid[v, m.day :] = value
            base_lat[v, m.day :], base_lon[v, m.day :] = m.home_lat, m.home_lon
            later = np.arange(self.shape[1]) > m.day
            kind[v, later & (kind[v] == OUTING)] = IDLE  # no trips planned from the old home
            dest_lat[v, later] = np.where(kind[v, later] == COMMUTE, m.work_lat, m.home_lat)
            dest_lon[v, later] = np.where(kind[v, later] == COMMUTE, m.work_lon, m.home_lon)
            relocate(m.day, m.home_lat, m.home_lon, m.day + 1)
        if story.cluster:
            c = story.cluster
            relocate(c.day, c.lat, c.lon, c.day + c.days)
            back = c.day + c.days
            relocate(back, self.home_lat[v, back], self.home_lon[v, back], back + 1)

    def _times(self, kind, prev_lat, prev_lon, dest_lat, dest_lon, base_lat, base_lon):
        """Local departure/arrival seconds of the day's two trips, and their road speeds."""
        rng, shape = self.rng, self.shape
        dist_a = haversine_m(prev_lat, prev_lon, dest_lat, dest_lon) * ROUTE_FACTOR
        dist_b = haversine_m(dest_lat, dest_lon, base_lat, base_lon) * ROUTE_FACTOR
        highway = dist_a > 40_000
        speed = np.where(highway, rng.uniform(70, 95, shape), rng.uniform(22, 38, shape))
        dur_a = dist_a / (speed / 3.6)
        dur_b = dist_b / (speed * rng.uniform(0.85, 1.1, shape) / 3.6)
        commute_out = np.clip(rng.normal(7.8, 0.45, shape), 6.5, 9.5) * HOUR_S
        commute_back = np.clip(rng.normal(18.0, 0.7, shape), 16.5, 21.5) * HOUR_S
        outing_out = rng.uniform(9, 14, shape) * HOUR_S
        stay = rng.uniform(1.5, 5, shape) * HOUR_S
        relocate_out = (
            np.where(highway, rng.uniform(6, 7, shape), rng.uniform(8, 11, shape)) * HOUR_S
        )
        depart = np.select(
            [kind == COMMUTE, kind == OUTING, kind == RELOCATE],
            [commute_out, outing_out, relocate_out],
            12 * HOUR_S,
        )
        dur_a = np.where(kind == RELOCATE, np.minimum(dur_a, 23.3 * HOUR_S - depart), dur_a)
        moving = (kind == COMMUTE) | (kind == OUTING) | (kind == RELOCATE)
        arrive = depart + np.where(moving, dur_a, 0)
        leave = np.select(
            [kind == COMMUTE, kind == OUTING],
            [
                np.maximum(commute_back, arrive + HOUR_S),
                np.maximum(np.minimum(arrive + stay, 23.4 * HOUR_S - dur_b), arrive + 1_800),
            ],
            arrive,
        )
        back = leave + np.where((kind == COMMUTE) | (kind == OUTING), dur_b, 0)
        epoch = self.day_epoch[:-1][None, :]
        as_epoch = [(epoch + t.astype(np.int64)) for t in (depart, arrive, leave, back)]
        return (*as_epoch, speed)

    def _segments(
        self, times, prev_lat, prev_lon, dest_lat, dest_lon, base_lat, base_lon
    ) -> Segments:
        depart, arrive, leave, back, _speed = times
        v, d = self.shape
        night_start = np.concatenate([np.full((v, 1), self.day_epoch[0]), back[:, :-1]], axis=1)

        def day_major(*columns: np.ndarray) -> np.ndarray:
            return np.stack(columns, axis=2).reshape(v, 4 * d)

        def with_final(per_day: np.ndarray, final: np.ndarray) -> np.ndarray:
            return np.concatenate([per_day, final[:, None]], axis=1).ravel()

        start = with_final(day_major(night_start, depart, arrive, leave), back[:, -1])
        end = with_final(day_major(depart, arrive, leave, back), np.full(v, self.day_epoch[-1]))
        kinds = with_final(
            day_major(*(np.full((v, d), k) for k in (STAY, TRIP, STAY, TRIP))), np.full(v, STAY)
        )
        lat0 = with_final(day_major(prev_lat, prev_lat, dest_lat, dest_lat), base_lat[:, -1])
        lon0 = with_final(day_major(prev_lon, prev_lon, dest_lon, dest_lon), base_lon[:, -1])
        lat1 = with_final(day_major(prev_lat, dest_lat, dest_lat, base_lat), base_lat[:, -1])
        lon1 = with_final(day_major(prev_lon, dest_lon, dest_lon, base_lon), base_lon[:, -1])
        road = haversine_m(lat0, lon0, lat1, lon1) * ROUTE_FACTOR
        duration = np.maximum(end - start, 1)
        trip_speed = np.where(kinds == TRIP, road / duration * 3.6, 0.0)
        vehicle = np.repeat(np.arange(v), 4 * d + 1)
        active = self.day_epoch[[s.active_day for s in self.stories]][vehicle]
        start = np.maximum(start, active)
        n = len(start)
        segments = Segments(
            vehicle,
            start,
            end,
            kinds.astype(np.int8),
            lat0,
            lon0,
            lat1,
            lon1,
            trip_speed,
            self.rng.uniform(-0.08, 0.08, n),
            self.rng.integers(0, 360, n).astype(np.int16),
        )
        return segments.take(end > start)


def _path_in_province(lat0, lon0, lat1, lon1, province) -> np.ndarray:
    """Whether the straight paths' end and quarter points are all safely inside ``province``."""
    ok = np.ones(len(lat0), dtype=bool)
    for f in (0.25, 0.5, 0.75, 1.0):
        ok &= safely_in(lat0 + f * (lat1 - lat0), lon0 + f * (lon1 - lon0), province)
    return ok


def _weekend_cities(rng: np.random.Generator, plans: list[LoanPlan], cities: list[City]):
    """Per car, the centre of a same-province city 40–200 km away reachable in-province, or NaN."""
    lat = np.full(len(plans), np.nan)
    lon = np.full(len(plans), np.nan)
    clat = np.array([c.lat for c in cities])
    clon = np.array([c.lon for c in cities])
    cprov = np.array([int(c.province_code) for c in cities])
    reachable: dict[str, np.ndarray] = {}
    for i, plan in enumerate(plans):
        home = plan.city
        if home.name_en not in reachable:
            dist = haversine_m(home.lat, home.lon, clat, clon)
            pick = np.flatnonzero(
                (cprov == int(home.province_code)) & (dist > 40_000) & (dist < 200_000)
            )
            ok = _path_in_province(
                np.full(len(pick), home.lat),
                np.full(len(pick), home.lon),
                clat[pick],
                clon[pick],
                np.full(len(pick), int(home.province_code)),
            )
            reachable[home.name_en] = pick[ok]
        options = reachable[home.name_en]
        if len(options) and rng.random() < 0.5:
            j = int(rng.choice(options))
            lat[i], lon[i] = clat[j], clon[j]
    return lat, lon


def _evaluate(seg: Segments, index: np.ndarray, t: np.ndarray, rng: np.random.Generator):
    """Position, speed, course and validity of fixes at times ``t`` in segments ``index``."""
    n = len(t)
    kind = seg.kind[index]
    lat0, lon0, lat1, lon1 = seg.lat0[index], seg.lon0[index], seg.lat1[index], seg.lon1[index]
    span = np.maximum(seg.end[index] - seg.start[index], 1)
    f = np.clip((t - seg.start[index]) / span, 0.0, 1.0)
    metres_per_deg = np.pi / 180 * 6_371_008.8
    dx = (lon1 - lon0) * np.cos(np.radians(lat0)) * metres_per_deg  # east, metres
    dy = (lat1 - lat0) * metres_per_deg  # north, metres
    bulge = seg.bend[index] * np.sin(np.pi * f)
    # Parked fixes wander 3–30 m around the spot; moving fixes follow the road within ~5 m.
    noise_r = np.where(kind == STAY, 3 + 27 * rng.beta(2, 3, n), rng.uniform(0, 5, n))
    noise_a = rng.uniform(0, 2 * np.pi, n)
    east = f * dx - bulge * dy + noise_r * np.sin(noise_a)
    north = f * dy + bulge * dx + noise_r * np.cos(noise_a)
    lat, lon = offset_m(lat0, lon0, east, north)
    slope = seg.bend[index] * np.pi * np.cos(np.pi * f)
    heading = np.degrees(np.arctan2(dx - slope * dy, dy + slope * dx)) % 360
    course = np.where(kind == TRIP, heading.astype(np.int16) % 360, seg.course[index])
    driving = (kind == TRIP) & (f > 0) & (f < 1)
    speed = np.where(
        driving, np.clip(seg.speed_kmh[index] * rng.lognormal(0, 0.25, n), 3, 135), 0.0
    )
    # Parked in a garage now and then: no fix, the device repeats its last known position.
    valid = (kind == TRIP) | (rng.random(n) >= 0.015)
    lat = np.where(valid, lat, lat0)
    lon = np.where(valid, lon, lon0)
    return lat, lon, speed.astype(np.float32), course.astype(np.int16), valid


def _wired_times(seg: Segments, settings: TrackSettings, rng: np.random.Generator):
    """Fix times of the wired tracker over the given segments: (segment index, epoch)."""
    span = seg.end - seg.start
    parked, moving = settings.parked_interval_s, settings.moving_interval_s
    counts = np.where(
        seg.kind == STAY, np.maximum((span - 31) // parked, 0), -(-span // moving) + 1
    )
    index = np.repeat(np.arange(len(span)), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    stay = seg.kind[index] == STAY
    offset_s = np.where(
        stay, (k + 1) * parked + rng.integers(0, 30, len(k)), np.minimum(k * moving, span[index])
    )
    return index, seg.start[index] + offset_s


def _clock_times(first: np.ndarray, last: np.ndarray, interval: int, rng: np.random.Generator):
    """Per device, times first + phase + k·interval (± 10 min) below ``last``: (device, epoch)."""
    phase = rng.integers(0, interval, len(first))
    counts = np.maximum((last - first - phase - 600) // interval, 0)
    owner = np.repeat(np.arange(len(first)), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    t = first[owner] + phase[owner] + k * interval + rng.integers(-600, 600, len(k))
    return owner, np.maximum(t, first[owner])


def simulate_tracks(
    rng: np.random.Generator,
    plans: list[LoanPlan],
    stories: list[Story],
    settings: TrackSettings,
    cities: list[City],
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[PositionColumns, TrackFacts]:
    """Positions of every tracker of every car over the window, and the facts truth needs."""
    planner = _DayPlanner(rng, plans, stories, settings, cities)
    segments, depart, arrive = planner.build()
    day_epoch = planner.day_epoch
    window_end = int(day_epoch[-1])
    wired_cut = np.full(len(plans), window_end, dtype=np.int64)
    wireless_cut = np.full(len(plans), window_end, dtype=np.int64)
    alarms: dict[int, int] = {}
    for v, story in enumerate(stories):
        if story.pledge:
            offline = int(arrive[v, story.pledge.day]) + story.pledge.hold_s
            wired_cut[v] = offline
            if not story.pledge.wireless_continues:
                wireless_cut[v] = offline + int(rng.integers(0, 6 * HOUR_S))
        if story.removal:
            alarms[v] = int(day_epoch[story.removal.day]) + story.removal.second
            wired_cut[v] = alarms[v]
    seg_key = (segments.vehicle.astype(np.int64) << 32) | (segments.start - day_epoch[0])
    first_seg = np.searchsorted(segments.vehicle, np.arange(len(plans) + 1))
    bounds = np.linspace(0, len(plans), _CHUNKS + 1).astype(int)
    parts: list[tuple[np.ndarray, ...]] = []
    for c in range(_CHUNKS):
        lo, hi = int(first_seg[bounds[c]]), int(first_seg[bounds[c + 1]])
        index, t = _wired_times(segments.take(slice(lo, hi)), settings, rng)
        index += lo
        vehicle = segments.vehicle[index]
        keep = t < wired_cut[vehicle]
        # A few fixes go missing (a dropped packet); never the last ones before a cut-off.
        keep &= (rng.random(len(t)) >= 0.002) | (
            t > wired_cut[vehicle] - 3 * settings.parked_interval_s
        )
        index, t, vehicle = index[keep], t[keep], vehicle[keep]
        parts.append(
            (
                vehicle,
                np.zeros(len(t), dtype=np.int8),
                t,
                *_evaluate(segments, index, t, rng),
                np.zeros(len(t), dtype=bool),
            )
        )
        if progress:
            progress("tracks", c + 1, _CHUNKS + 2)
    wireless = np.array([v for v, p in enumerate(plans) if p.wireless is not None], dtype=np.int64)
    active = day_epoch[[stories[v].active_day for v in wireless]]
    owner, t = _clock_times(active, wireless_cut[wireless], settings.wireless_interval_s, rng)
    vehicle = wireless[owner]
    index = np.searchsorted(seg_key, (vehicle << 32) | (t - day_epoch[0]), side="right") - 1
    parts.append(
        (
            vehicle,
            np.ones(len(t), dtype=np.int8),
            t,
            *_evaluate(segments, index, t, rng),
            np.zeros(len(t), dtype=bool),
        )
    )
    if alarms:
        vehicle = np.array(list(alarms), dtype=np.int64)
        t = np.array(list(alarms.values()), dtype=np.int64)
        index = np.searchsorted(seg_key, (vehicle << 32) | (t - day_epoch[0]), side="right") - 1
        lat, lon, speed, course, _valid = _evaluate(segments, index, t, rng)
        parts.append(
            (
                vehicle,
                np.zeros(len(t), dtype=np.int8),
                t,
                lat,
                lon,
                speed * 0,
                course,
                np.ones(len(t), dtype=bool),
                np.ones(len(t), dtype=bool),
            )
        )
    if progress:
        progress("tracks", _CHUNKS + 1, _CHUNKS + 2)
    positions, wired_end, wireless_end = _assemble(
        plans, parts, wired_cut, wireless_cut, window_end
    )
    if progress:
        progress("tracks", _CHUNKS + 2, _CHUNKS + 2)
    return positions, TrackFacts(day_epoch, depart, arrive, wired_end, wireless_end)


def _assemble(plans, parts, wired_cut, wireless_cut, window_end):
    """One sorted :class:`PositionColumns` from the parts, and the last fix of stopped devices."""
    vehicle, is_wireless, t, lat, lon, speed, course, valid, alarm = (
        np.concatenate(column) for column in zip(*parts, strict=True)
    )
    ids = [p.wired.device_id for p in plans] + [
        p.wireless.device_id if p.wireless else "" for p in plans
    ]
    order_of_id = np.argsort(np.array(ids))
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order_of_id] = np.arange(len(ids))
    device_rank = rank[vehicle + is_wireless.astype(np.int64) * len(plans)]
    t0 = int(t.min()) if len(t) else 0
    order = np.argsort((device_rank << 32) | (t - t0), kind="stable")
    device_rank, t = device_rank[order], t[order]
    # A fix repeated at the same second (a trip starting as a stay ends) is reported once.
    unique = np.ones(len(t), dtype=bool)
    unique[1:] = (device_rank[1:] != device_rank[:-1]) | (t[1:] != t[:-1])
    order, device_rank, t = order[unique], device_rank[unique], t[unique]
    sorted_ids = np.array(ids, dtype=object)[order_of_id]
    alarms = np.full(len(order), "", dtype=object)  # one shared "" (not a string per fix)
    alarms[alarm[order]] = POWER_CUT
    positions = PositionColumns(
        device_id=sorted_ids[device_rank],
        time=t,
        lat=lat[order],
        lon=lon[order],
        speed_kmh=speed[order],
        course=course[order],
        valid=valid[order],
        alarms=alarms,
    )
    last = np.flatnonzero(np.r_[device_rank[1:] != device_rank[:-1], True])
    last_time = dict(zip(device_rank[last].tolist(), t[last].tolist(), strict=True))
    wired_end = {
        int(v): last_time[int(rank[v])]
        for v in np.flatnonzero(wired_cut < window_end)
        if int(rank[v]) in last_time
    }
    wireless_end = {
        int(v): last_time[int(rank[v + len(plans)])]
        for v in np.flatnonzero(wireless_cut < window_end)
        if plans[v].wireless and int(rank[v + len(plans)]) in last_time
    }
    return positions, wired_end, wireless_end
