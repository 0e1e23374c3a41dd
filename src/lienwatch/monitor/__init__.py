"""The collateral monitor: per-vehicle risk detectors and the alert lifecycle (no I/O).

The names below are loaded on first use (PEP 562), so that importing a small module such as
``lienwatch.monitor.model`` (the store does, for the alert's types) does not load the detectors
and NumPy: every ``lienwatch`` command starts a little faster.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lienwatch.monitor.engine import Monitor
    from lienwatch.monitor.lifecycle import AlertBook
    from lienwatch.monitor.model import (
        Alert,
        AlertStatus,
        AlertType,
        DeviceSpec,
        MonitorInputError,
        VehicleSpec,
    )
    from lienwatch.monitor.regions import RegionLibrary
    from lienwatch.monitor.stays import StayTable, find_stays
    from lienwatch.monitor.zones import ZONE_CATEGORIES, ZoneLibrary

_HOMES = {
    "Monitor": "engine",
    "AlertBook": "lifecycle",
    "Alert": "model",
    "AlertStatus": "model",
    "AlertType": "model",
    "DeviceSpec": "model",
    "MonitorInputError": "model",
    "VehicleSpec": "model",
    "RegionLibrary": "regions",
    "StayTable": "stays",
    "find_stays": "stays",
    "ZONE_CATEGORIES": "zones",
    "ZoneLibrary": "zones",
}

__all__ = [
    "ZONE_CATEGORIES",
    "Alert",
    "AlertBook",
    "AlertStatus",
    "AlertType",
    "DeviceSpec",
    "Monitor",
    "MonitorInputError",
    "RegionLibrary",
    "StayTable",
    "VehicleSpec",
    "ZoneLibrary",
    "find_stays",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'lienwatch.monitor' has no attribute {name!r}")
    return getattr(import_module(f"lienwatch.monitor.{_HOMES[name]}"), name)
