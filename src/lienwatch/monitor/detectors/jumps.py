"""``position_jump``: consecutive fixes of one tracker at an impossible speed."""

from __future__ import annotations

from lienwatch.domain.geo import EARTH_RADIUS_M, m_of_chord2
from lienwatch.monitor.detectors.base import Emitter, Limits, point, position_of
from lienwatch.monitor.model import AlertType, Fix

#: Up to this squared chord (637 km) an arc is at most 1.00042 times its chord: a chord that
#: short, times ``_ARC_OVER_CHORD``, bounds the great-circle distance from above.
_SHORT_R2 = 0.01
_ARC_OVER_CHORD = 1.001


class Jumps:
    """``position_jump``: two consecutive valid fixes of one tracker imply an impossible speed."""

    __slots__ = ("last", "min_r2", "mps", "out", "slow")

    def __init__(self, out: Emitter) -> None:
        self.out = out
        self.last: dict[str, Fix] = {}
        out.keep_tuned(self)

    def tune(self, limits: Limits) -> None:
        self.min_r2 = limits.jump_min_r2
        self.mps = limits.jump_mps
        # c2 · slow ≤ seconds²: a short chord c2 was covered at less than jump_mps
        self.slow = (EARTH_RADIUS_M * _ARC_OVER_CHORD / limits.jump_mps) ** 2

    def on_fix(self, fix: Fix) -> None:
        last = self.last
        previous = last.get(fix.device_id)
        last[fix.device_id] = fix
        if previous is None:
            return
        dx, dy, dz = fix.x - previous.x, fix.y - previous.y, fix.z - previous.z
        c2 = dx * dx + dy * dy + dz * dz  # chord2, inlined: this runs for every fix
        if c2 <= self.min_r2:
            return
        seconds = fix.time - previous.time
        if seconds < 1:
            seconds = 1
        if c2 <= _SHORT_R2 and c2 * self.slow <= seconds * seconds:
            return  # surely slower than jump_mps: no arc (asin) to compute
        metres = m_of_chord2(c2)
        if metres / seconds > self.mps:
            self.out.raise_(
                AlertType.POSITION_JUMP,
                start=fix.time,
                at=fix.time,
                device_id=fix.device_id,
                position=position_of(fix),
                fixes=[previous, fix],
                evidence={
                    "from": point(previous),
                    "to": point(fix),
                    "km": round(metres / 1000, 1),
                    "seconds": seconds,
                    "kmh": round(metres / seconds * 3.6),
                },
            )
