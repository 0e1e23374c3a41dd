"""``tracker_mismatch`` (子母分离): a vehicle's wired and wireless trackers disagreeing."""

from __future__ import annotations

from lienwatch.domain.geo import chord2_of_m, m_of_chord2
from lienwatch.monitor.detectors.base import Emitter, chord2, point, position_of
from lienwatch.monitor.detectors.liveness import Liveness
from lienwatch.monitor.model import AlertType, Fix, iso_utc


class TrackerPair:
    """``tracker_mismatch`` (子母分离): a vehicle's trackers far apart for a while, or one far
    from where the other fell silent. Resolves when the two report close together again.

    Two fixes within ``pair_window_s`` of each other form a pair; a pair is apart when the
    distance exceeds ``mismatch_m`` plus what a car at ``_LAG_MPS`` covers in their time
    difference (so a moving car's trackers sampled a minute apart are not "apart"). Apart pairs
    must follow each other without a gap longer than ``mismatch_min`` to count as one episode.
    """

    _LAG_MPS = 35.0  # about 126 km/h

    def __init__(self, out: Emitter, liveness: Liveness) -> None:
        self.out = out
        self.liveness = liveness
        self.last: dict[str, Fix] = {}
        self.apart_since: int | None = None
        self.apart_last = 0
        self.alerted = False

    def on_fix(self, fix: Fix) -> None:
        limits = self.out.limits
        for device, other in self.last.items():
            if device == fix.device_id:
                continue
            lag = fix.time - other.time
            if lag <= limits.pair_window_s:
                allowed = chord2_of_m(limits.mismatch_m + self._LAG_MPS * lag)
                self._paired(fix, other, chord2(fix, other) > allowed)
            elif self.liveness.silent_for(device, fix.time) > 0 and chord2(
                fix, other
            ) > chord2_of_m(limits.mismatch_m):
                self._mismatch(fix, other, fix.time, silent=True)
        self.last[fix.device_id] = fix

    def _paired(self, fix: Fix, other: Fix, apart: bool) -> None:
        if not apart:
            if self.alerted:
                self.out.resolve(AlertType.TRACKER_MISMATCH, fix.time)
            self.apart_since, self.alerted = None, False
            return
        if self.apart_since is None or fix.time - self.apart_last > self.out.limits.mismatch_s:
            self.apart_since = fix.time
        self.apart_last = fix.time
        if fix.time - self.apart_since >= self.out.limits.mismatch_s:
            self._mismatch(fix, other, self.apart_since, silent=False)

    def _mismatch(self, fix: Fix, other: Fix, start: int, *, silent: bool) -> None:
        if self.alerted:
            return
        self.alerted = True
        self.out.raise_(
            AlertType.TRACKER_MISMATCH,
            start=start,
            at=fix.time,
            device_id=fix.device_id,
            position=position_of(fix),
            evidence={
                "other_device": other.device_id,
                "other_last_fix": iso_utc(other.time),
                "other_position": point(other),
                "km": round(m_of_chord2(chord2(fix, other)) / 1000, 2),
                "other_silent": silent,
            },
        )
