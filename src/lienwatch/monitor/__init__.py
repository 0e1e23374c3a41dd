"""The collateral monitor: per-vehicle risk detectors and the alert lifecycle (no I/O)."""

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
