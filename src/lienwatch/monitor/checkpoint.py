"""A monitor's detector state as bytes, and back: what a scaled-out worker checkpoints.

The state is everything a :class:`~lienwatch.monitor.engine.Monitor` learned from the fixes it
processed (the vehicles' detectors, the fixes held for the reorder window, the alert book,
its clock and counts), without what it was built with (settings, provinces, risk zones,
lender regions) or given since (the other partitions' long stays): those are the process's,
given again to the monitor the state is loaded into. It is taken whole, attribute by
attribute, so it follows the detectors as they change without any code of theirs knowing
about checkpoints.

The bytes are a zlib-compressed pickle: only load what this deployment's own workers wrote
(the JetStream bucket of the checkpoints is not for anyone else to write).
"""

from __future__ import annotations

import itertools
import pickle
import zlib
from typing import Any

from lienwatch.monitor.engine import Monitor

#: Changed when the layout of the pickled state changes incompatibly: an older checkpoint is
#: then refused (:class:`CheckpointError` naming both versions) and the worker warms up from
#: the store instead. 2: ``left_region``, ``unusual_area`` and ``risk_zone_visit`` keep only
#: the first fix outside (or in the zone), not its time beside it. 3: the ended cluster groups
#: are kept by their vehicles and start, with their end (``Monitor._clustered``). 4: the
#: detectors hold the thresholds they compare per fix as floats of their own, given by their
#: ``Emitter``; and the newest end of a forgotten long stay (``Monitor._forgotten_until``),
#: which a state 4 saved before it was kept loads without (nothing forgotten yet). 5: the
#: detectors keep their fields in ``__slots__``, which a pickled instance dict cannot fill.
STATE_VERSION = 5
#: What a monitor is built with rather than learned: not part of its state.
_GIVEN = frozenset(
    {"settings", "zones", "regions", "provinces", "neighbours", "neighbours_forgotten_until"}
)


class CheckpointError(ValueError):
    """Bytes that are not a monitor state this lienwatch can load."""


def dump_state(monitor: Monitor, extra: dict[str, Any] | None = None) -> bytes:
    """The state of ``monitor`` (and the caller's ``extra``, picklable) as bytes."""
    state = {name: value for name, value in vars(monitor).items() if name not in _GIVEN}
    # A counter's position, not the counter: itertools.count pickles no more after 3.13.
    state["_seq"] = next(monitor._seq)
    monitor._seq = itertools.count(state["_seq"] + 1)
    payload = {"version": STATE_VERSION, "monitor": state, "extra": extra or {}}
    return zlib.compress(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL), 3)


def load_state(monitor: Monitor, data: bytes) -> dict[str, Any]:
    """Put the state in ``data`` into ``monitor`` (freshly built with the settings, provinces,
    zones and regions of this process); return the ``extra`` saved with it.

    Raises:
        CheckpointError: ``data`` is not a state of this version.
    """
    try:
        payload = pickle.loads(zlib.decompress(data))  # our own workers' bytes only
        version, state, extra = payload["version"], payload["monitor"], payload["extra"]
    except Exception as exc:
        raise CheckpointError(f"checkpoint: not a monitor state ({exc})") from None
    if version != STATE_VERSION:
        raise CheckpointError(f"checkpoint: state version {version}, expected {STATE_VERSION}")
    state = dict(state)
    state["_seq"] = itertools.count(state["_seq"])
    vars(monitor).update(state)
    return dict(extra)
