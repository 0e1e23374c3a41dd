"""The per-vehicle detectors, one module per family;
:class:`~lienwatch.monitor.vehicle.VehicleMonitor` runs them all on each fix.

| alert types | module |
| --- | --- |
| `power_cut`, `gnss_antenna_cut`, `device_removed` (alarm) | `alarms.py` |
| `device_offline`, `device_removed` (silence after a power cut) | `liveness.py` |
| `long_stay` (and learned places, the stays `cluster` compares) | `long_stay.py` |
| `risk_zone_visit` | `risk_zones.py` |
| `left_region` | `region.py` |
| `night_relocation`, `address_mismatch` | `nights.py` |
| `unusual_area` | `activity_area.py` |
| `position_jump` | `jumps.py` |
| `tracker_mismatch` | `tracker_pair.py` |

`base.py` holds what they share (thresholds as compared, the emitter, chords, places).
`cluster` compares vehicles and lives in :mod:`lienwatch.monitor.cluster`.
"""
