from __future__ import annotations

import pytest

from lienwatch.sim.generate import SimConfig, generate
from lienwatch.sim.records import Portfolio

SMALL = SimConfig(loans=100, days=20, seed=11)


@pytest.fixture(scope="session")
def portfolio() -> Portfolio:
    return generate(SMALL)
