"""``tracker_mismatch`` (子母分离): a vehicle's wired and wireless trackers disagreeing."""

from __future__ import annotations

from collections import deque

from lienwatch.domain.geo import EARTH_RADIUS_M, chord2_of_m, m_of_chord2
from lienwatch.monitor.detectors.base import Emitter, Limits, chord2, point, position_of
from lienwatch.monitor.detectors.liveness import Liveness
from lienwatch.monitor.model import AlertType, Fix, iso_utc


class TrackerPair:
    """``tracker_mismatch`` (子母分离): a vehicle's trackers far apart for a while, or one far
    from where the other fell silent. Resolves when the two are seen together again.

    Each valid fix of one tracker is compared with where the other is known to be at its time:

    - *a pair*: the other reported within ``pair_window_s``; apart when the distance exceeds
      ``mismatch_m`` plus what a car at ``_LAG_MPS`` covers in their time difference (so a
      moving car's trackers sampled a minute apart are not "apart"), together otherwise;
    - *a stay that spans it*: the other is a wired tracker whose fixes before and after it
      (within its offline limit) are within ``stay_radius_m`` of each other. A wired tracker
      reports as soon as its car moves, so it was there meanwhile: apart when the fix is more
      than ``mismatch_m`` plus the stay radius from it, together within ``mismatch_m``;
    - *two fixes that bound it*: the other's fixes before and after it, from each of which a
      car at ``_BOUND_MPS`` could have gone only so far: apart when the fix lies beyond both
      reaches by more than ``mismatch_m`` (a fix far beyond the other's last reach is apart at
      once; only a wired tracker's next fix is waited for). This is what a wireless tracker
      reporting every few hours needs: it is almost never within ``pair_window_s`` of the
      wired one.

    An episode is apart evidence spanning ``mismatch_min`` with no evidence of the trackers
    together in between (a fix compared with the other's next fix is judged once that fix
    arrives, hence possibly after later evidence). The rule "reported more than ``mismatch_m``
    from where the other, silent longer than its removal silence, fell silent" raises at once.
    """

    _LAG_MPS = 35.0  # about 126 km/h
    _BOUND_MPS = 50.0  # 180 km/h: how far a car may have gone between two fixes
    _PENDING = 64  # fixes of a tracker waiting for the other's next fix (the newest kept)
    _R2 = EARTH_RADIUS_M**2

    __slots__ = (
        "alerted", "apart_last", "apart_since", "last", "limits", "liveness", "mismatch_m",
        "mismatch_r2", "out", "pending", "window_s"
    )

    def __init__(self, out: Emitter, liveness: Liveness) -> None:
        self.out = out
        self.liveness = liveness
        self.last: dict[str, Fix] = {}
        self.pending: dict[str, deque[Fix]] = {}  # device -> its fixes awaiting the other's
        self.apart_since: int | None = None
        self.apart_last = 0
        self.alerted = False
        out.keep_tuned(self)

    def tune(self, limits: Limits) -> None:
        self.limits = limits
        self.window_s = limits.pair_window_s
        self.mismatch_m = limits.mismatch_m
        self.mismatch_r2 = limits.mismatch_r2

    def on_fix(self, fix: Fix) -> None:
        device_id, t = fix.device_id, fix.time
        pending = self.pending
        if pending and (len(pending) > 1 or device_id not in pending):
            self._judge_waiting(fix)
        for device, other in self.last.items():
            if device == device_id:
                continue
            lag = t - other.time  # not negative: a vehicle's fixes come in time order
            dx, dy, dz = fix.x - other.x, fix.y - other.y, fix.z - other.z
            c2 = dx * dx + dy * dy + dz * dz  # chord2, inlined: every fix of the vehicle
            # within mismatch_m the trackers are together by every rule: chord2_of_m grows
            # with the lag, and _beyond compares a longer reach
            near = c2 <= self.mismatch_r2
            if lag <= self.window_s:
                apart = not near and c2 > chord2_of_m(self.mismatch_m + self._LAG_MPS * lag)
                if apart or self.apart_since is not None or self.alerted:  # else no change
                    self._verdict(fix, other, apart, at=t, rule="pair")
            elif not near and self.liveness.silent_for(device, t) > 0:
                self._mismatch(fix, other, t, at=t, rule="silent")
            elif not near and self._beyond(c2, self._BOUND_MPS * lag):
                self._verdict(fix, other, True, at=t, rule="bound")
            elif self.liveness.kind.get(device) == "wired":
                # judged at the other's next fix; a wireless tracker's next fix is hours
                # away and bounds little: this fix was judged against its last one above
                waiting = self.pending.get(fix.device_id)
                if waiting is None:
                    waiting = self.pending[fix.device_id] = deque(maxlen=self._PENDING)
                waiting.append(fix)
        self.last[fix.device_id] = fix

    def _beyond(self, c2: float, reach_m: float) -> bool:
        """Whether a squared chord is more than ``mismatch_m`` beyond ``reach_m``: the chord
        is shorter than the arc, so a chord that far is an arc that far."""
        far = self.mismatch_m + reach_m
        return c2 * self._R2 > far * far

    def _judge_waiting(self, fix: Fix) -> None:
        """The other trackers' fixes waiting for this tracker's next fix, judged now."""
        previous = self.last.get(fix.device_id)
        for device in [d for d in self.pending if d != fix.device_id]:
            waiting = self.pending.pop(device)
            if previous is not None:
                for earlier in waiting:
                    self._bracketed(earlier, previous, fix)

    def _bracketed(self, fix: Fix, before: Fix, after: Fix) -> None:
        """Judge ``fix`` against the other tracker's fixes ``before`` and ``after`` it."""
        limits = self.limits
        other = before.device_id
        if (
            self.liveness.kind.get(other) == "wired"
            and chord2(before, after) <= limits.stay_r2
            and after.time - before.time <= self.liveness.limit[other]
        ):
            c2 = chord2(fix, before)
            if c2 <= limits.mismatch_r2:
                self._verdict(fix, before, False, at=after.time, rule="stay")
            elif c2 > limits.mismatch_stay_r2:
                self._verdict(fix, before, True, at=after.time, rule="stay")
            return
        if self._beyond(
            chord2(fix, before), self._BOUND_MPS * (fix.time - before.time)
        ) and self._beyond(chord2(fix, after), self._BOUND_MPS * (after.time - fix.time)):
            self._verdict(fix, before, True, at=after.time, rule="bound")

    def _verdict(self, fix: Fix, other: Fix, apart: bool, *, at: int, rule: str) -> None:
        """Evidence about the trackers at ``fix.time``, known at ``at``."""
        if not apart:
            if self.apart_since is not None and fix.time < self.apart_last:
                self.apart_since = self.apart_last  # only the apart evidence after it stands
                return
            if self.alerted:
                self.out.resolve(AlertType.TRACKER_MISMATCH, at)
            self.apart_since, self.alerted = None, False
            return
        if self.apart_since is None:
            self.apart_since, self.apart_last = fix.time, fix.time
        self.apart_since = min(self.apart_since, fix.time)
        self.apart_last = max(self.apart_last, fix.time)
        if self.apart_last - self.apart_since >= self.limits.mismatch_s:
            self._mismatch(fix, other, self.apart_since, at=at, rule=rule)

    def _mismatch(self, fix: Fix, other: Fix, start: int, *, at: int, rule: str) -> None:
        if self.alerted:
            return
        self.alerted = True
        self.out.raise_(
            AlertType.TRACKER_MISMATCH,
            start=start,
            at=at,
            device_id=fix.device_id,
            position=position_of(fix),
            fixes=[fix, other],
            rule="tracker_mismatch.silent" if rule == "silent" else "tracker_mismatch.apart",
            evidence={
                "other_device": other.device_id,
                "other_last_fix": iso_utc(other.time),
                "other_position": point(other),
                "km": round(m_of_chord2(chord2(fix, other)) / 1000, 2),
                "other_silent": rule == "silent",
                "judged_by": rule,  # pair, stay, bound or silent
            },
        )
