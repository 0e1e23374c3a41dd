"""``left_region``: outside the permitted region (lender-defined area or province)."""

from __future__ import annotations

from collections.abc import Sequence

from lienwatch.monitor.detectors.base import HOUR_S, Emitter, position_of
from lienwatch.monitor.model import AlertType, Fix


class Region:
    """``left_region``: outside the permitted region for longer than allowed — the vehicle's
    lender-defined area when it has one (``fix.in_area``), else its province."""

    def __init__(self, out: Emitter, region: int | None, codes: Sequence[str]) -> None:
        self.out = out
        self.area = out.spec.area
        self.region = region
        self.codes = codes
        self.out_since: int | None = None
        self.first_out: Fix | None = None
        self.alerted = False

    def on_fix(self, fix: Fix) -> None:
        if self.area is None and self.region is None:
            self.region = fix.province
            return
        if fix.in_area if self.area is not None else fix.province == self.region:
            if self.alerted:
                self.out.resolve(AlertType.LEFT_REGION, fix.time)
            self.out_since, self.alerted = None, False
        elif self.out_since is None:
            self.out_since, self.first_out = fix.time, fix
        elif not self.alerted and fix.time - self.out_since > self.out.limits.left_region_s:
            self.alerted = True
            self.out.raise_(
                AlertType.LEFT_REGION,
                start=self.out_since,
                at=fix.time,
                device_id=fix.device_id,
                position=position_of(fix),
                fixes=[f for f in (self.first_out, fix) if f is not None],
                evidence={
                    "permitted": self._permitted(),
                    "hours_outside": round((fix.time - self.out_since) / HOUR_S, 1),
                },
            )

    def _permitted(self) -> str | None:
        if self.area is not None:
            return self.area
        return self.codes[self.region] if self.region is not None and self.region >= 0 else None
