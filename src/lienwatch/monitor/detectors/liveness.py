"""``device_offline`` and the silence-derived ``device_removed``: the detector driven by
time as well as fixes."""

from __future__ import annotations

from collections.abc import Sequence

from lienwatch.config import MonitorThresholds
from lienwatch.monitor.detectors.base import HOUR_S, NEVER, Emitter
from lienwatch.monitor.model import AlertType, DeviceSpec, Fix, iso_utc


class Liveness:
    """``device_offline`` (silence longer than the device kind allows) and ``device_removed``
    inferred from a wired tracker falling silent right after a power-cut alarm. The only
    detector driven by time as well as fixes: :meth:`fire_due` runs at deadlines."""

    __slots__ = (
        "deadline", "kind", "last_fix", "limit", "next_deadline", "offline", "out", "removal_due",
        "removed_by_silence", "silence"
    )

    def __init__(self, out: Emitter, devices: Sequence[DeviceSpec]) -> None:
        t = out.thresholds
        self.out = out
        self.limit = {d.device_id: _offline_limit(d, t) for d in devices}
        self.silence = {d.device_id: _silence_limit(d, t) for d in devices}
        self.kind = {d.device_id: d.kind for d in devices}
        self.last_fix: dict[str, Fix] = {}  # when each device last reported, and the evidence
        self.deadline: dict[str, float] = {}
        self.offline: dict[str, int] = {}  # device -> when it went offline
        self.removal_due: dict[str, tuple[Fix, float]] = {}  # device -> (alarm, deadline)
        self.removed_by_silence: set[str] = set()
        self.next_deadline: float = NEVER

    def add_device(self, device: DeviceSpec) -> None:
        self.limit[device.device_id] = _offline_limit(device, self.out.thresholds)
        self.silence[device.device_id] = _silence_limit(device, self.out.thresholds)
        self.kind[device.device_id] = device.kind

    def rejudge(self) -> None:
        """New thresholds (:meth:`add_device` again): the clocks running go on to the new
        limits from the same last fix and power cut."""
        for device in self.deadline:
            self.deadline[device] = self.last_fix[device].time + self.limit[device]
        for device, (alarm, _) in self.removal_due.items():
            self.removal_due[device] = (alarm, alarm.time + self.silence[device])
        self._next()

    def on_fix(self, fix: Fix) -> None:
        device, t = fix.device_id, fix.time
        if self.offline and device in self.offline:
            del self.offline[device]
            if not self.offline:
                self.out.resolve(AlertType.DEVICE_OFFLINE, t)
        removal_was_due = False
        if self.removal_due:
            self.removal_due.pop(device, None)  # it kept reporting: not removed
            removal_was_due = True
        if self.removed_by_silence and device in self.removed_by_silence:  # it reports again
            self.removed_by_silence.discard(device)
            self.out.resolve(AlertType.DEVICE_REMOVED, t)
        self.last_fix[device] = fix
        deadline = self.deadline
        before = deadline.get(device)
        deadline[device] = due = t + self.limit[device]
        # next_deadline is the soonest deadline here (every writer of them ends in _next):
        # unless this device held it, the soonest is the old one or this device's new one
        if removal_was_due:
            self._next()
        elif before is not None and before == self.next_deadline:
            self.next_deadline = due if len(deadline) == 1 else min(deadline.values())
        elif due < self.next_deadline:
            self.next_deadline = due

    def power_cut(self, fix: Fix) -> None:
        """A power-cut alarm from a wired tracker: it must keep reporting on its battery."""
        if self.kind[fix.device_id] == "wired":
            self.removal_due[fix.device_id] = (fix, fix.time + self.silence[fix.device_id])
            self._next()

    def fire_due(self, until: float) -> None:
        """Raise every silence whose deadline is before ``until``, in deadline order."""
        due = [(d, 0, device) for device, d in self.deadline.items() if d < until]
        due += [(d, 1, device) for device, (_, d) in self.removal_due.items() if d < until]
        for deadline, kind, device in sorted(due):
            if kind == 0:
                self._went_offline(device, int(deadline))
            else:
                self._removed(device, int(deadline))
        self._next()

    def _went_offline(self, device: str, at: int) -> None:
        del self.deadline[device]
        self.offline[device] = at
        self.out.raise_(
            AlertType.DEVICE_OFFLINE,
            start=at,
            at=at,
            device_id=device,
            fixes=[self.last_fix[device]],
            evidence={
                "offline": {d: iso_utc(self.last_fix[d].time) for d in sorted(self.offline)},
                "allowed_silence_h": round(self.limit[device] / HOUR_S, 2),
            },
        )

    def _removed(self, device: str, at: int) -> None:
        alarm, _ = self.removal_due.pop(device)
        last = self.last_fix[device]
        self.removed_by_silence.add(device)
        self.out.raise_(
            AlertType.DEVICE_REMOVED,
            start=alarm.time,
            at=at,
            device_id=device,
            rule="device_removed.silence",
            fixes=[alarm] if last is alarm else [alarm, last],
            evidence={
                "power_cut_at": iso_utc(alarm.time),
                "silent_since": iso_utc(last.time),
            },
        )

    def _next(self) -> None:
        soonest = min(self.deadline.values(), default=NEVER)
        if self.removal_due:
            soonest = min(soonest, min(d for _, d in self.removal_due.values()))
        self.next_deadline = soonest

    def silent_for(self, device: str, t: int) -> float:
        """How much longer than its removal silence ``device`` has been quiet at ``t``."""
        last = self.last_fix.get(device)
        return -NEVER if last is None else t - last.time - self.silence[device]


def _offline_limit(device: DeviceSpec, t: MonitorThresholds) -> float:
    kind_h = t.offline_wired_h if device.kind == "wired" else t.offline_wireless_h
    return max(kind_h * HOUR_S, t.offline_min_intervals * device.report_interval_s)


def _silence_limit(device: DeviceSpec, t: MonitorThresholds) -> float:
    return max(
        t.removal_silence_min_h * HOUR_S, t.removal_silence_intervals * device.report_interval_s
    )
