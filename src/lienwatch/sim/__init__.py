"""Synthetic portfolio and telemetry with ground truth (seeded, reproducible).

>>> from lienwatch.sim import SimConfig, generate
>>> portfolio = generate(SimConfig(loans=50, days=14))  # doctest: +SKIP
"""

from lienwatch.sim.generate import SimConfig, SimConfigError, generate
from lienwatch.sim.truth import expected_alerts
from lienwatch.sim.write import write_portfolio, write_positions

__all__ = [
    "SimConfig",
    "SimConfigError",
    "expected_alerts",
    "generate",
    "write_portfolio",
    "write_positions",
]
