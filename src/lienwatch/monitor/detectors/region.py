"""``left_region``: outside the permitted region (lender-defined area or province)."""

from __future__ import annotations

from collections.abc import Sequence

from lienwatch.monitor.detectors.base import HOUR_S, Emitter, Limits, position_of
from lienwatch.monitor.model import AlertType, Fix


class Region:
    """``left_region``: outside the permitted region for longer than allowed — the vehicle's
    lender-defined area when it has one (``fix.in_area``), else its province."""

    __slots__ = ("alerted", "allowed_s", "area", "codes", "first_out", "out", "region")

    def __init__(self, out: Emitter, region: int | None, codes: Sequence[str]) -> None:
        self.out = out
        self.area = out.spec.area
        self.region = region
        self.codes = codes
        self.first_out: Fix | None = None  # the first fix outside, None while inside
        self.alerted = False  # only ever with a first fix outside
        out.keep_tuned(self)

    def tune(self, limits: Limits) -> None:
        self.allowed_s = limits.left_region_s

    def on_fix(self, fix: Fix) -> None:
        if self.area is not None:
            inside = fix.in_area
        elif self.region is not None:
            inside = fix.province == self.region
        else:
            self.region = fix.province
            return
        if inside:
            if self.first_out is not None:
                if self.alerted:
                    self.out.resolve(AlertType.LEFT_REGION, fix.time)
                self.first_out, self.alerted = None, False
        elif self.first_out is None:
            self.first_out = fix
        elif not self.alerted and fix.time - self.first_out.time > self.allowed_s:
            self.alerted = True
            since = self.first_out.time
            self.out.raise_(
                AlertType.LEFT_REGION,
                start=since,
                at=fix.time,
                device_id=fix.device_id,
                position=position_of(fix),
                fixes=[self.first_out, fix],
                evidence={
                    "permitted": self._permitted(),
                    "hours_outside": round((fix.time - since) / HOUR_S, 1),
                },
            )

    def _permitted(self) -> str | None:
        if self.area is not None:
            return self.area
        return self.codes[self.region] if self.region is not None and self.region >= 0 else None
