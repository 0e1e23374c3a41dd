"""The live collateral monitor: fixes from the position bus in, stored alerts out.

:class:`LiveMonitor` keeps one streaming :class:`~lienwatch.monitor.engine.Monitor` running
in a long-lived process (``lienwatch serve``). It does no I/O of its own: it reads the fleet
and recent positions through a :class:`FleetSource` and keeps alerts through an
:class:`AlertStore` (``lienwatch.store.monitoring`` implements both), calling them in worker
threads, one step at a time:

- **fixes**: each bus batch is mapped from device keys to the fleet's trackers and ingested;
  a key the fleet does not know makes it reload the fleet once (a device bound since), and
  keys still unknown then (unbound, quarantined, loan closed) are skipped until the next
  periodic reload.
- **clock**: every ``advance_s`` people's decisions on open alerts are read back from the
  store (a closed alert's next occurrence opens a new one) and the monitor advances to the
  wall clock, so silences (``device_offline``, ``device_removed``) are raised without any fix
  arriving; every ``fleet_refresh_s`` the fleet is reloaded first (new devices, loans, the
  latest nightly exposures, a newly published alert-rule version: detectors keep their
  state and judge the next fixes by it).
- **saving**: after every step the alerts that are new or changed are saved in one
  transaction; a failed save keeps them for the next step.
- **alarms**: a tracker alarm is not held for the reorder window (see
  :mod:`lienwatch.monitor.engine`): its alert is raised and saved in the step that ingests
  it, and the ``followups`` callback, when given, raises its follow-up trigger right after
  (``lienwatch serve``: within seconds of the frame, not at the next follow-up tick).
- **restart**: :meth:`LiveMonitor.start` seeds the alert book with the alerts the store holds
  open, then replays the last ``warmup_h`` hours of stored positions (plus each tracker's
  last fix before them) so stays, offline clocks and learned places survive a restart. The
  seeded alerts are continued: the replayed condition repeats them (a repeat older than the
  stored alert's last update changes nothing), their cause ending resolves them; a replayed
  alert whose key the store already holds closed stays closed (the store keeps people's
  decisions and reports them back). So a restart never stores an alert twice.
- **checkpoints** (scaled-out workers, one monitor per partition): :meth:`LiveMonitor.
  ingest_now` ingests and saves a batch before it returns (the bus acknowledges it after),
  marking the stream sequence it covers; :meth:`LiveMonitor.checkpoint` is the detector
  state with that mark (:mod:`lienwatch.monitor.checkpoint`), and ``start(restored=...)``
  continues from such a state instead of warming up from the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypeVar

from lienwatch import clock
from lienwatch.config import MonitorSettings
from lienwatch.domain.positions import PositionColumns
from lienwatch.domain.provinces import ProvinceIndex
from lienwatch.monitor.checkpoint import CheckpointError, dump_state, load_state
from lienwatch.monitor.detectors.base import StayRecord
from lienwatch.monitor.engine import Monitor
from lienwatch.monitor.lifecycle import Decision
from lienwatch.monitor.model import (
    ALARM_TYPES,
    Alert,
    DeviceSpec,
    VehicleSpec,
    iso_utc,
)
from lienwatch.monitor.regions import RegionLibrary
from lienwatch.monitor.zones import ZoneLibrary

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Fixes waiting for the monitor above which the bus handler waits (backpressure).
MAX_WAITING_FIXES = 100_000


class BusFix(Protocol):
    """A fix as the position bus delivers it (``lienwatch.telematics.fixes.Fix``)."""

    @property
    def device_id(self) -> int: ...  # the store's device key
    @property
    def time(self) -> datetime: ...  # aware UTC
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...
    @property
    def speed_kmh(self) -> float: ...
    @property
    def course(self) -> int: ...
    @property
    def valid(self) -> bool: ...
    @property
    def alarms(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Fleet:
    """What the monitor watches: trackers by the store's device key, and their vehicles.

    Only trackers bound to a vehicle with a live loan are here; ``exposures_as_of`` is the
    day of the nightly snapshot the vehicles' exposures come from (None before any run).
    ``zones`` and ``regions`` are the risk zones and permitted regions to judge them by,
    ``references`` their version: a monitor takes new ones when it changes. ``rules`` are
    the monitor settings with the alert rules in force (None: the monitor's own); a monitor
    takes them when their ``rule_set`` changes.
    """

    devices: Mapping[int, DeviceSpec]
    vehicles: Sequence[VehicleSpec]
    exposures_as_of: date | None = None
    zones: ZoneLibrary | None = None
    regions: RegionLibrary | None = None
    references: str = ""
    rules: MonitorSettings | None = None


class FleetSource(Protocol):
    """Where the live monitor reads its fleet and the positions it warms up on (blocking)."""

    def load_fleet(self) -> Fleet: ...

    def recent_fixes(self, fleet: Fleet, *, since: int) -> Iterable[PositionColumns]:
        """The stored fixes of ``fleet``'s trackers taken at ``since`` (epoch seconds) or
        later, with each tracker's last fix before it, in batches that hold whole vehicles."""
        ...


@dataclass(frozen=True, slots=True)
class Saved:
    """What a save found: stored decisions that differ from the saved alerts, and the
    alerts refused because the store holds another open alert of their vehicle and type
    (alert id → that stored alert, None when it is not the monitor's)."""

    decisions: list[Decision] = field(default_factory=list)
    refused: dict[str, Alert | None] = field(default_factory=dict)


class AlertStore(Protocol):
    """Where the live monitor keeps its alerts (blocking)."""

    def open_alerts(self) -> list[Alert]:
        """The open and acknowledged alerts stored by the monitor, as monitor alerts."""
        ...

    def save(self, alerts: Sequence[Alert]) -> Saved:
        """Store ``alerts`` in one transaction (by their ids; closed rows are kept as they
        are, acknowledged ones are not set back to open)."""
        ...

    def decisions(self, alerts: Sequence[Alert]) -> list[Decision]:
        """The stored statuses of ``alerts`` that differ from theirs."""
        ...


class LiveMonitor:
    """A streaming monitor fed by the position bus; see the module docstring.

    Use: subscribe :meth:`handle` to the bus, ``await start()`` (warm-up, then the fixes and
    clock tasks), ``await stop()`` at the end; :meth:`status` for a health endpoint.
    """

    def __init__(
        self,
        source: FleetSource,
        store: AlertStore,
        *,
        settings: MonitorSettings,
        provinces: ProvinceIndex,
        followups: Callable[[Sequence[str]], int] | None = None,
    ) -> None:
        """``followups`` raises the follow-up triggers of stored alerts given by id (blocking)
        and returns how many it raised; it is called with the alarm alerts just saved."""
        self.source = source
        self.store = store
        self.followups = followups
        self._followed: set[str] = set()  # alarm alerts handed to followups
        self.settings = settings
        self.provinces = provinces
        self.monitor: Monitor | None = None
        self.fleet = Fleet({}, ())
        self.state = "starting"
        self.counts: Counter[str] = Counter()
        self.last_advance: int | None = None
        self.fleet_loaded_at: int | None = None
        self.last_error: str | None = None
        self.last_late_at: int | None = None
        self.warmup: dict[str, Any] = {}
        self.mark: int | None = None  # the stream sequence the state covers (checkpoints)
        self.warmed_since: datetime | None = None  # the start of the warm-up from the store
        self._loaded_clock = 0.0
        self._unbound: set[int] = set()
        self._pending: dict[str, Alert] = {}
        self._inbox: list[Sequence[BusFix]] = []
        self._waiting = 0
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    # -- the asyncio side ------------------------------------------------------------------

    async def handle(self, fixes: Sequence[BusFix]) -> None:
        """The bus subscriber: queue ``fixes`` for the monitor (kept while it warms up)."""
        while (
            self._waiting >= MAX_WAITING_FIXES
            and self.state == "running"
            and not self._stopping.is_set()
        ):
            self._room.clear()
            await self._room.wait()
        if self._stopping.is_set() or not fixes:
            return
        self._inbox.append(fixes)
        self._waiting += len(fixes)
        self.counts["fixes_received"] += len(fixes)
        self._arrived.set()

    async def start(self, restored: bytes | None = None) -> None:
        """Continue from the ``restored`` state of :meth:`checkpoint` or, without one (or
        with one this lienwatch cannot load), warm up from the store (raising if that fails);
        then run the fixes and clock tasks."""
        self.state = "warming up"
        now = int(clock.timestamp())
        try:
            if restored is None:
                raise CheckpointError("no checkpoint")
            await asyncio.to_thread(self._restore, now, restored)
        except CheckpointError as exc:
            if restored is not None:
                log.warning("live monitor: warming up from the store instead: %s", exc)
            await asyncio.to_thread(self._warm_up, now)
        self.state = "running"
        self._tasks = [
            asyncio.create_task(self._take_fixes(), name="monitor-fixes"),
            asyncio.create_task(self._run_clock(), name="monitor-clock"),
        ]

    async def stop(self) -> None:
        """Ingest the fixes already queued, save, and stop (later bus batches are ignored)."""
        self._stopping.set()
        self._arrived.set()
        self._room.set()
        await asyncio.gather(*self._tasks)
        self.state = "stopped"

    async def ingest_now(self, fixes: Sequence[BusFix], mark: int) -> None:
        """Ingest ``fixes`` and save their alerts before returning (raising if that failed);
        the state then covers stream sequence ``mark``."""
        async with self._lock:
            self.counts["fixes_received"] += len(fixes)
            await _finish(asyncio.to_thread(self._ingest, fixes))
            self.mark = mark

    async def checkpoint(self) -> tuple[int | None, bytes]:
        """The stream sequence the state covers and the state, for :meth:`start`."""
        async with self._lock:
            return self.mark, await _finish(asyncio.to_thread(self._dump))

    async def share_stays(
        self, neighbours: Sequence[StayRecord], forgotten_until: int
    ) -> tuple[list[StayRecord], int]:
        """Give the monitor the long stays of the vehicles other monitors watch, and the
        newest end of a stay those forgot (for ``cluster``); return its own for them: its long
        stays within ``cluster_lookback_days`` and :attr:`Monitor.forgotten_until`."""
        async with self._lock:
            self._monitor.neighbours = neighbours
            self._monitor.neighbours_forgotten_until = forgotten_until
            return self._monitor.long_stays(), self._monitor.forgotten_until

    async def _take_fixes(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            batches, self._inbox, self._waiting = self._inbox, [], 0
            self._room.set()
            if batches:
                await self._step(self._ingest, [fix for batch in batches for fix in batch])
            if self._stopping.is_set() and not self._inbox:
                return

    async def _run_clock(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), self.settings.advance_s)
            except TimeoutError:
                await self._step(self._tick, int(clock.timestamp()))

    async def _step(self, work: Callable[..., None], *args: Any) -> None:
        """Run one step in a worker thread, one at a time; an error is logged and kept for
        :meth:`status`, and the next step goes on."""
        async with self._lock:
            try:
                await asyncio.to_thread(work, *args)
            except Exception as exc:
                self.last_error = f"{iso_utc(clock.timestamp())} {type(exc).__name__}: {exc}"
                log.exception("live monitor: %s failed", getattr(work, "__name__", work))

    def status(self) -> dict[str, Any]:
        """Figures for a health endpoint (safe to call while a step runs)."""
        monitor = self.monitor
        return {
            "state": self.state,
            "vehicles": len(self.fleet.vehicles),
            "devices": len(self.fleet.devices),
            "exposures_as_of": _iso_date(self.fleet.exposures_as_of),
            "fixes_received": self.counts["fixes_received"],
            "fixes_ingested": self.counts["fixes_ingested"],
            "unbound_fixes": self.counts["unbound_fixes"],
            "late_fixes": monitor.counts["late"] if monitor else 0,
            "last_late_at": iso_utc(self.last_late_at),
            "alerts_open": monitor.book.open_count if monitor else 0,
            "alerts_saved": self.counts["alerts_saved"],
            "alerts_refused": self.counts["alerts_refused"],
            "alarm_triggers": self.counts["alarm_triggers"],
            "fleet_reloads": self.counts["fleet_loads"],
            "fleet_loaded_at": iso_utc(self.fleet_loaded_at),
            "references": self.fleet.references[:12] or None,
            "alert_rules": self.settings.rule_set,
            "risk_zones": len(monitor.zones) if monitor and monitor.zones else 0,
            "regions": len(monitor.regions) if monitor and monitor.regions else 0,
            "last_advance": iso_utc(self.last_advance),
            "last_error": self.last_error,
            "warmup": self.warmup,
        }

    # -- the steps (worker threads, one at a time) -----------------------------------------

    def _load_fleet(self) -> Fleet:
        """The source's fleet, a vehicle naming a permitted area its regions lack judged by
        its province (logged: the regions or the vehicle are to be corrected), so that one
        car waiting for its region never stops the monitor of the others, nor holds the new
        references back."""
        fleet = self.source.load_fleet()
        known = fleet.regions or ()
        unknown = [v.vehicle_id for v in fleet.vehicles if v.area is not None
                   and v.area not in known]  # fmt: skip
        if not unknown:
            return fleet
        log.warning("monitor fleet: %d vehicles name a permitted area the regions lack, judged "
                    "by their province: %s", len(unknown), ", ".join(unknown[:10]))  # fmt: skip
        missing = set(unknown)
        vehicles = [replace(v, area=None) if v.vehicle_id in missing else v
                    for v in fleet.vehicles]  # fmt: skip
        return replace(fleet, vehicles=vehicles)

    def _warm_up(self, now: int) -> None:
        started = time.monotonic()
        fleet = self._load_fleet()
        self.settings = fleet.rules or self.settings
        monitor = Monitor(
            list(fleet.devices.values()),
            fleet.vehicles,
            settings=self.settings,
            zones=fleet.zones,
            regions=fleet.regions,
            provinces=self.provinces,
        )
        seeded = self.store.open_alerts()
        monitor.book.seed(seeded)
        since = now - int(self.settings.warmup_h * 3_600)
        self.warmed_since = datetime.fromtimestamp(since, UTC)
        for batch in self.source.recent_fixes(fleet, since=since):
            monitor.replay(batch)
        replayed = monitor.counts["fixes"]
        monitor.advance(now)
        self.monitor = monitor
        self._took_fleet(fleet, now)
        self.last_advance = now
        self._save()
        self.warmup = {
            "since": iso_utc(since),
            "fixes": replayed,
            "alerts_continued": len(seeded),
            "seconds": round(time.monotonic() - started, 3),
        }

    def _restore(self, now: int, state: bytes) -> None:
        started = time.monotonic()
        fleet = self._load_fleet()
        self.settings = fleet.rules or self.settings
        monitor = Monitor([], (), settings=self.settings, zones=fleet.zones,
                          regions=fleet.regions, provinces=self.provinces)  # fmt: skip
        extra = load_state(monitor, state)
        monitor.use_rules(self.settings)  # its vehicles were saved under the rules then
        # the zones of the checkpoint's vehicles found again in this process's by id, and
        # the checkpoint's vehicles respecced as the fleet has them now
        monitor.reconfigure(list(fleet.devices.values()), fleet.vehicles, fleet.zones,
                            fleet.regions)  # fmt: skip
        self.mark, self._followed = extra["mark"], extra["followed"]
        self._pending = extra["pending"]
        monitor.advance(now)
        self.monitor = monitor
        self._took_fleet(fleet, now)
        self.last_advance = now
        self._save()
        self.warmup = {"checkpoint": self.mark, "seconds": round(time.monotonic() - started, 3)}

    def _dump(self) -> bytes:
        extra = {"mark": self.mark, "followed": set(self._followed), "pending": self._pending}
        return dump_state(self._monitor, extra)

    def _ingest(self, fixes: Sequence[BusFix]) -> None:
        # (not ``set - dict.keys()``: that walks the whole fleet at every batch)
        unknown = {f.device_id for f in fixes
                   if f.device_id not in self.fleet.devices and f.device_id not in self._unbound}
        if unknown:
            self._reload_fleet(int(clock.timestamp()))
            self._unbound |= {device for device in unknown if device not in self.fleet.devices}
        devices = self.fleet.devices
        watched = [f for f in fixes if f.device_id in devices]
        self.counts["unbound_fixes"] += len(fixes) - len(watched)
        self.counts["fixes_ingested"] += len(watched)
        late = self._monitor.counts["late"]
        self._monitor.ingest(
            PositionColumns.of(
                [devices[f.device_id].device_id for f in watched],
                [int(f.time.timestamp()) for f in watched],
                [f.lat for f in watched],
                [f.lon for f in watched],
                speed_kmh=[f.speed_kmh for f in watched],
                course=[f.course for f in watched],
                valid=[f.valid for f in watched],
                alarms=[f.alarms for f in watched],
            )
        )
        if dropped := self._monitor.counts["late"] - late:
            self.last_late_at = int(clock.timestamp())
            log.warning("live monitor: %d of %d fixes dropped as late: repeats, or older than "
                        "what their vehicle already processed", dropped, len(watched))  # fmt: skip
        self._save()

    def _tick(self, now: int) -> None:
        if time.monotonic() - self._loaded_clock >= self.settings.fleet_refresh_s:
            self._reload_fleet(now)
        book = self._monitor.book
        for decision in self.store.decisions(book.open_alerts()):
            book.apply(decision)
        self._monitor.advance(now)
        self.last_advance = now
        self._save()
        if self._followed:
            self._followed &= {alert.id for alert in book.open_alerts()}

    def _reload_fleet(self, now: int) -> None:
        fleet = self._load_fleet()
        if fleet.references != self.fleet.references:
            self.counts["references_loaded"] += 1
        if fleet.rules is not None and fleet.rules.rule_set != self.settings.rule_set:
            self._monitor.use_rules(fleet.rules)
            self.settings = fleet.rules
            self.counts["rules_loaded"] += 1
        self._monitor.reconfigure(list(fleet.devices.values()), fleet.vehicles, fleet.zones,
                                  fleet.regions)  # fmt: skip
        self._took_fleet(fleet, now)

    def _took_fleet(self, fleet: Fleet, now: int) -> None:
        self.fleet = fleet
        self.fleet_loaded_at = now
        self._loaded_clock = time.monotonic()
        self._unbound.clear()
        self.counts["fleet_loads"] += 1

    def _save(self) -> None:
        """Save what changed since the last save (and what a failed save left)."""
        book = self._monitor.book
        self._pending.update((alert.id, alert) for alert in book.take_changed())
        if not self._pending:
            return
        saved = self.store.save(list(self._pending.values()))
        self.counts["alerts_saved"] += len(self._pending) - len(saved.refused)
        alarms = [
            a.id for a in self._pending.values()
            if a.type in ALARM_TYPES and a.is_open and a.id not in saved.refused
            and a.id not in self._followed
        ]  # fmt: skip
        self._pending.clear()
        if alarms and self.followups is not None:
            self._follow_up(alarms)
        for decision in saved.decisions:
            book.apply(decision)
        for alert_id, stored in saved.refused.items():
            self.counts["alerts_refused"] += 1
            self.last_error = f"alert {alert_id} refused: its vehicle has another open alert"
            log.warning("live monitor: %s; continuing %s", self.last_error, stored and stored.id)
            if stored is not None:
                book.replace(alert_id, stored)
        book.forget_closed()

    def _follow_up(self, alert_ids: list[str]) -> None:
        """Raise the follow-ups of alarm alerts just saved; a failure is logged and kept for
        :meth:`status` (the next follow-up tick raises them then)."""
        assert self.followups is not None
        try:
            self.counts["alarm_triggers"] += self.followups(alert_ids)
        except Exception as exc:
            self.last_error = f"{iso_utc(clock.timestamp())} follow-ups of alarms: {exc}"
            log.exception("live monitor: raising the follow-ups of %d alarms failed",
                          len(alert_ids))  # fmt: skip
            return
        self._followed.update(alert_ids)

    @property
    def _monitor(self) -> Monitor:
        if self.monitor is None:
            raise RuntimeError("live monitor: not started")
        return self.monitor


async def _finish(work: Awaitable[_T]) -> _T:
    """Await ``work`` (a worker thread's) to its end even when cancelled meanwhile, so the
    lock held around it is not released while the thread still changes the state."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.gather(task, return_exceptions=True)
        raise


def _iso_date(day: date | None) -> str | None:
    return None if day is None else day.isoformat()
