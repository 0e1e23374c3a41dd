"""Where the car sleeps: ``night_relocation`` and ``address_mismatch``."""

from __future__ import annotations

from lienwatch.domain.geo import m_of_chord2
from lienwatch.monitor.detectors.base import (
    DAY_S,
    Emitter,
    Limits,
    chord2,
    place_at,
    point,
    position_of,
)
from lienwatch.monitor.model import AlertType, Fix


class Nights:
    """The learned night parking place (the last fix of each local night window):
    ``night_relocation`` when it moves for several nights in a row, ``address_mismatch`` when
    it lies far from the declared home."""

    __slots__ = (
        "candidate", "confirmations", "home", "learned", "limits", "night_end_s", "out", "pending",
        "pending_ends", "streak"
    )

    def __init__(self, out: Emitter, home: tuple[float, float] | None) -> None:
        self.out = out
        self.home = place_at(home[0], home[1], visits=0) if home else None
        self.pending: Fix | None = None
        self.pending_ends = 0
        self.learned: Fix | None = None
        self.confirmations = 0
        self.candidate: Fix | None = None
        self.streak = 0
        out.keep_tuned(self)

    def tune(self, limits: Limits) -> None:
        self.limits = limits
        self.night_end_s = limits.night_end_s

    def on_fix(self, fix: Fix) -> None:
        local = fix.local
        if self.pending is not None and local >= self.pending_ends:
            self._night(self.pending)
            self.pending = None
        of_day = local % DAY_S
        if of_day < self.night_end_s:
            self.pending = fix
            self.pending_ends = local - of_day + self.night_end_s

    def confirms(self, x: float, y: float, z: float) -> bool:
        """Count a night whose fix lies at the unit vector (x, y, z) when it only confirms the
        learned spot (near it, and not the confirmation that completes it: that one checks
        the address), without the night's :class:`Fix`; whether it did (else :meth:`_night`
        must judge it). The batch path asks this first: most nights are at the learned spot."""
        learned, limits = self.learned, self.limits
        if learned is None or self.confirmations + 1 == limits.night_move_nights:
            return False
        dx, dy, dz = x - learned.x, y - learned.y, z - learned.z  # chord2, inlined
        if dx * dx + dy * dy + dz * dz > limits.night_move_r2:
            return False
        self.confirmations += 1
        self.streak, self.candidate = 0, None
        return True

    def _night(self, spot: Fix) -> None:
        limits = self.limits
        learned = self.learned
        if learned is None or (
            self.confirmations < limits.night_move_nights
            and chord2(spot, learned) > limits.night_move_r2
        ):
            self.learned, self.confirmations = spot, 1
        elif chord2(spot, learned) <= limits.night_move_r2:
            self.confirmations += 1
            self.streak, self.candidate = 0, None
            if self.confirmations == limits.night_move_nights:
                self._check_address(spot)
        elif self.candidate is not None and chord2(spot, self.candidate) <= limits.night_move_r2:
            self.streak += 1
            if self.streak >= limits.night_move_nights:
                self._relocated(spot, learned, self.candidate)
        else:
            self.candidate, self.streak = spot, 1
            if limits.night_move_nights == 1:
                self._relocated(spot, learned, spot)

    def _relocated(self, spot: Fix, old: Fix, first: Fix) -> None:
        self.out.raise_(
            AlertType.NIGHT_RELOCATION,
            start=first.time,
            at=spot.time,
            device_id=spot.device_id,
            position=position_of(spot),
            fixes=[old, first, spot] if first is not spot else [old, spot],
            evidence={
                "from": point(old),
                "to": point(spot),
                "km": round(m_of_chord2(chord2(spot, old)) / 1000, 1),
                "nights": self.streak,
            },
        )
        self.learned, self.confirmations = spot, self.limits.night_move_nights
        self.candidate, self.streak = None, 0
        self._check_address(spot)

    def _check_address(self, spot: Fix) -> None:
        if self.home is None:
            return
        if chord2(spot, self.home) > self.limits.address_r2:
            self.out.raise_(
                AlertType.ADDRESS_MISMATCH,
                start=spot.time,
                at=spot.time,
                device_id=spot.device_id,
                position=position_of(spot),
                fixes=[spot],
                evidence={
                    "night_place": point(spot),
                    "declared_home": point(self.home),
                    "km": round(m_of_chord2(chord2(spot, self.home)) / 1000, 1),
                },
            )
        else:
            self.out.resolve(AlertType.ADDRESS_MISMATCH, spot.time)
