"""``position_jump``: consecutive fixes of one tracker at an impossible speed."""

from __future__ import annotations

from lienwatch.domain.geo import m_of_chord2
from lienwatch.monitor.detectors.base import Emitter, point, position_of
from lienwatch.monitor.model import AlertType, Fix


class Jumps:
    """``position_jump``: two consecutive valid fixes of one tracker imply an impossible speed."""

    def __init__(self, out: Emitter) -> None:
        self.out = out
        self.last: dict[str, Fix] = {}

    def on_fix(self, fix: Fix) -> None:
        previous = self.last.get(fix.device_id)
        self.last[fix.device_id] = fix
        if previous is None:
            return
        dx, dy, dz = fix.x - previous.x, fix.y - previous.y, fix.z - previous.z
        c2 = dx * dx + dy * dy + dz * dz  # chord2, inlined: this runs for every fix
        if c2 <= self.out.limits.jump_min_r2:
            return
        metres = m_of_chord2(c2)
        seconds = max(fix.time - previous.time, 1)
        if metres / seconds > self.out.limits.jump_mps:
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
