"""The live monitor scaled out: each ``lienwatch worker`` monitors the partitions it owns.

A :class:`PartitionedMonitor` runs two loops, each every third of ``lease_s``: one renews its
leases (:mod:`lienwatch.bus.leases`) and nothing else, so slow monitoring work never lets a
lease expire; the other gives up what it owns beyond its fair share, takes free partitions
up to it, and checkpoints every owned partition whose state moved on since ``checkpoint_s``
ago. For each partition it owns it runs one
:class:`~lienwatch.monitor.live.LiveMonitor` over the partition's vehicles, fed by the
durable pull consumer ``monitor-<n>`` of the partition's subject:

- **taking a partition**: the monitor restores the partition's checkpoint (else warms up
  from the store) and the consumer is set afresh to start right after the stream sequence
  the checkpoint covers. Without a checkpoint (a partition never checkpointed, or one this
  lienwatch cannot load) it starts at the messages stored in the stream since the warm-up's
  start (``[monitor] warmup_h`` ago): those the store writer had not written when the
  warm-up read the store, never the whole stream; what the warm-up already saw is dropped
  as repeats. The first round after the first batch checkpoints it.
- **a batch**: ingested and its alerts saved before the handler returns; only then does the
  bus acknowledge it.
- **giving a partition up** (rebalancing, stopping): the consumer stops after the batch in
  hand, the state is checkpointed, and only then is the lease deleted.
- **clusters across partitions**: every ``STAYS_EVERY_S`` the worker writes the recent
  long stays (``[monitor] cluster_lookback_days``) of each partition it owns to the
  ``<stream>_STAYS`` bucket (laid out as the checkpoints), with the newest end of a stay the
  partition forgot, and gives each of its monitors those of every other partition, so the
  hourly
  ``cluster`` pass of a partition compares its vehicles with the whole fleet's and raises the
  alerts of its own members (the other members' partitions raise theirs, with the same ids).
- **a worker dying**: its leases expire; whoever takes its partitions restores their last
  checkpoints and replays the stream from there. The replay raises the same alerts with the
  same ids (alerts are stored by id, follow-up triggers by their alert's), so nothing is
  doubled, and nothing acknowledged is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from lienwatch import clock
from lienwatch.bus.jetstream import JetStreamBus, partition_of
from lienwatch.bus.leases import Checkpoint, Checkpoints, Leases, fair_share, preferred_order
from lienwatch.domain.positions import PositionColumns
from lienwatch.monitor.detectors.base import StayRecord
from lienwatch.monitor.engine import BEFORE_ANY
from lienwatch.monitor.lifecycle import Decision
from lienwatch.monitor.live import AlertStore, Fleet, FleetSource, LiveMonitor, Saved
from lienwatch.monitor.model import Alert

log = logging.getLogger(__name__)

#: How long the fleet read for one partition serves the others (they load together).
FLEET_SHARED_S = 2.0
#: How often the long stays are shared between partitions (``cluster`` runs hourly).
STAYS_EVERY_S = 60.0


class SharedFleet:
    """One fleet load for all the partitions of a process taking them at once (threads)."""

    def __init__(self, source: FleetSource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._fleet: Fleet | None = None
        self._loaded = 0.0

    def load(self) -> Fleet:
        with self._lock:
            if self._fleet is None or time.monotonic() - self._loaded > FLEET_SHARED_S:
                self._fleet, self._loaded = self.source.load_fleet(), time.monotonic()
            return self._fleet


@dataclass(frozen=True, slots=True)
class PartitionFleet:
    """:class:`~lienwatch.monitor.live.FleetSource` of one partition's vehicles."""

    shared: SharedFleet
    partition: int
    partitions: int

    def load_fleet(self) -> Fleet:
        fleet = self.shared.load()
        mine = self._mine
        return replace(
            fleet,
            devices={key: d for key, d in fleet.devices.items() if mine(d.vehicle_id)},
            vehicles=[v for v in fleet.vehicles if mine(v.vehicle_id)],
        )

    def recent_fixes(self, fleet: Fleet, *, since: int) -> Iterable[PositionColumns]:
        return self.shared.source.recent_fixes(fleet, since=since)

    def _mine(self, vehicle: str) -> bool:
        return partition_of(vehicle, self.partitions) == self.partition


class VehicleAlerts(AlertStore, Protocol):
    """An :class:`~lienwatch.monitor.live.AlertStore` that reads the open alerts of given
    vehicles only (``lienwatch.store.monitoring.StoreAlertStore``)."""

    def open_alerts(self, vehicles: Collection[str] | None = None) -> list[Alert]: ...


@dataclass(frozen=True, slots=True)
class PartitionAlerts:
    """:class:`~lienwatch.monitor.live.AlertStore` continuing one partition's open alerts:
    those of the vehicles of its fleet, read by VIN (not every open alert of the book)."""

    store: VehicleAlerts
    fleet: PartitionFleet

    def open_alerts(self) -> list[Alert]:
        return self.store.open_alerts([v.vehicle_id for v in self.fleet.load_fleet().vehicles])

    def save(self, alerts: Sequence[Alert]) -> Saved:
        return self.store.save(alerts)

    def decisions(self, alerts: Sequence[Alert]) -> list[Decision]:
        return self.store.decisions(alerts)


@dataclass(slots=True)
class _Owned:
    monitor: LiveMonitor
    checkpointed: int | None = None  # the stream sequence of the last checkpoint
    checkpointed_at: str | None = None
    checkpoint_bytes: int = 0
    checkpointed_clock: float = 0.0


class PartitionedMonitor:
    """The live monitor over the partitions this worker owns; see the module docstring.

    ``new_monitor(partition)`` builds the (not yet started) monitor of a partition.
    """

    def __init__(
        self,
        bus: JetStreamBus,
        leases: Leases,
        checkpoints: Checkpoints,
        new_monitor: Callable[[int], LiveMonitor],
        *,
        lease_s: float,
        checkpoint_s: float,
        stays: Checkpoints | None = None,
    ) -> None:
        """``stays``: the bucket the partitions share their long stays in (none: ``cluster``
        compares the vehicles of one partition only)."""
        self.bus = bus
        self.stays = stays
        self._stays_shared = -STAYS_EVERY_S
        self._own_stays: dict[int, bytes] = {}  # partition -> its stays as last written
        self.leases = leases
        self.checkpoints = checkpoints
        self.new_monitor = new_monitor
        self.lease_s = lease_s
        self.checkpoint_s = checkpoint_s
        self.partitions = bus.settings.partitions
        self.owned: dict[int, _Owned] = {}
        self.workers = 0
        self.rounds = 0
        self.taken = self.given_up = self.lost = 0
        self.last_error: str | None = None
        self._last_renewal = time.monotonic()
        self._lost: set[int] = set()  # leases renewal found taken by another worker
        self._leasing = asyncio.Lock()  # one lease operation at a time
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Run the first rounds (raising if they fail), then the loops in the background."""
        await self._renew()
        await self._round()
        self._tasks = [
            asyncio.create_task(self._every(self._renew), name="partition-leases"),
            asyncio.create_task(self._every(self._round), name="partition-owner"),
        ]

    async def stop(self) -> None:
        """Give every partition up (checkpointed) and leave."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for partition in list(self.owned):
            await self._give_up(partition)
        await self.leases.leave()

    def status(self) -> dict[str, Any]:
        """Figures for the health endpoint."""
        shown = ("state", "vehicles", "fixes_ingested", "alerts_saved", "references",
                 "risk_zones", "regions", "last_error")  # fmt: skip
        return {
            "worker": self.leases.worker,
            "workers_alive": self.workers,
            "fair_share": fair_share(self.partitions, self.workers),
            "rounds": self.rounds,
            "taken": self.taken,
            "given_up": self.given_up,
            "lost": self.lost,
            "last_error": self.last_error,
            "partitions": {
                str(partition): {
                    "checkpoint": owned.checkpointed,
                    "checkpoint_at": owned.checkpointed_at,
                    "checkpoint_bytes": owned.checkpoint_bytes,
                    "covered": owned.monitor.mark,
                    **{key: figures[key] for key in shown},
                }
                for partition, owned in sorted(self.owned.items())
                for figures in (owned.monitor.status(),)  # one snapshot per partition
            },
        }

    async def _every(self, work: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await work()
            except Exception as exc:  # NATS away a moment: the next round tries again
                self.last_error = f"{clock.now().isoformat()} {type(exc).__name__}: {exc}"
                log.exception("partitioned monitor: %s failed", work.__name__)

    async def _renew(self) -> None:
        """Say this worker is alive and keep its leases (only NATS round trips: fast)."""
        self.workers = await self.leases.heartbeat()
        async with self._leasing:
            for partition in list(self.leases.revisions):
                if not await self.leases.renew(partition):
                    log.warning("partitioned monitor: lost partition %d to another worker",
                                partition)  # fmt: skip
                    self._lost.add(partition)
        self._last_renewal = time.monotonic()

    async def _round(self) -> None:
        began = time.monotonic()
        share = fair_share(self.partitions, self.workers)
        lost, self._lost = self._lost, set()
        for partition in sorted(lost & self.owned.keys()):
            self.lost += 1
            await self._drop(partition)
        for partition in sorted(self.owned, reverse=True)[: max(0, len(self.owned) - share)]:
            await self._give_up(partition)
        for partition in preferred_order(self.partitions, self.leases.worker):
            if len(self.owned) >= share or time.monotonic() - began > self.lease_s / 3:
                break  # the rest at the next round: the leases held are renewed first
            if partition in self.owned:
                continue
            async with self._leasing:
                taken = await self.leases.take(partition)
            if taken:
                await self._take(partition)
        for partition, owned in list(self.owned.items()):
            if time.monotonic() - owned.checkpointed_clock >= self.checkpoint_s:
                await self._checkpoint(partition)
        if self.stays is not None and time.monotonic() - self._stays_shared >= STAYS_EVERY_S:
            await self._share_stays(self.stays)
        self.rounds += 1

    async def _share_stays(self, bucket: Checkpoints) -> None:
        """Write the owned partitions' long stays, give each the others' (see the module
        docstring); another owned partition's are those it wrote at the last share."""
        self._stays_shared = time.monotonic()
        others = [p for p in range(self.partitions) if p not in self.owned]
        read = await asyncio.gather(*(bucket.get(p) for p in others))
        foreign = [_shared(entry.state) for entry in read if entry is not None]
        self._own_stays = {p: b for p, b in self._own_stays.items() if p in self.owned}
        for partition, owned in list(self.owned.items()):
            shared = foreign + [
                _shared(data) for p, data in self._own_stays.items() if p != partition
            ]
            neighbours = [s for stays, _ in shared for s in stays]
            forgotten_until = max((until for _, until in shared), default=BEFORE_ANY)
            mine = await owned.monitor.share_stays(neighbours, forgotten_until)
            data = zlib.compress(pickle.dumps(mine, protocol=pickle.HIGHEST_PROTOCOL), 3)
            if data != self._own_stays.get(partition):
                await bucket.put(partition, Checkpoint(owned.monitor.mark or 0, data))
                self._own_stays[partition] = data

    def since_last_renewal(self) -> float:
        """Seconds since the leases were last renewed."""
        return time.monotonic() - self._last_renewal

    async def _take(self, partition: int) -> None:
        monitor = self.new_monitor(partition)
        try:
            checkpoint = await self.checkpoints.get(partition)
            await monitor.start(restored=checkpoint.state if checkpoint else None)
            await self.bus.consume_partition(
                _consumer(partition), partition, monitor.ingest_now,
                after=monitor.mark, since=monitor.warmed_since,
            )  # fmt: skip
        except BaseException:
            await monitor.stop()
            async with self._leasing:
                await self.leases.give_up(partition)
            raise
        owned = self.owned[partition] = _Owned(monitor, checkpointed=monitor.mark)
        owned.checkpointed_clock = time.monotonic()
        self.taken += 1
        log.info("partitioned monitor: took partition %d at sequence %s", partition, monitor.mark)

    async def _give_up(self, partition: int) -> None:
        """Hand ``partition`` over: stop consuming, checkpoint, then free the lease."""
        await self.bus.stop_consumer(_consumer(partition))
        await self._checkpoint(partition)
        await self.owned.pop(partition).monitor.stop()
        async with self._leasing:
            await self.leases.give_up(partition)
        self.given_up += 1

    async def _drop(self, partition: int) -> None:
        """Stop monitoring a partition another worker owns now (no checkpoint: its own)."""
        await self.bus.stop_consumer(_consumer(partition))
        await self.owned.pop(partition).monitor.stop()

    async def _checkpoint(self, partition: int) -> None:
        owned = self.owned[partition]
        owned.checkpointed_clock = time.monotonic()
        if owned.monitor.mark is None or owned.monitor.mark == owned.checkpointed:
            return
        sequence, state = await owned.monitor.checkpoint()
        assert sequence is not None
        await self.checkpoints.put(partition, Checkpoint(sequence, state))
        owned.checkpointed, owned.checkpointed_at = sequence, clock.now().isoformat()
        owned.checkpoint_bytes = len(state)


def _shared(data: bytes) -> tuple[list[StayRecord], int]:
    """A partition's long stays and the newest end of a stay it forgot, as
    :meth:`PartitionedMonitor._share_stays` wrote them (our workers' bytes); a worker of an
    earlier version wrote the stays alone."""
    shared = pickle.loads(zlib.decompress(data))
    if isinstance(shared, list):
        return shared, BEFORE_ANY
    stays, forgotten_until = shared
    return list(stays), int(forgotten_until)


def _consumer(partition: int) -> str:
    return f"monitor-{partition}"
