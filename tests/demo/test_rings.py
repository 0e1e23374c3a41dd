"""The demo's fraud-ring figure on a small simulated book with planted rings (the book alone:
no tracks are needed)."""

from __future__ import annotations

from datetime import date

import numpy as np

from lienwatch.demo.rings import score_rings
from lienwatch.sim.book import BookSpec, build_book
from lienwatch.sim.generate import DEFAULT_PROFILE_MIX


def test_the_planted_rings_are_found_and_nothing_else():
    spec = BookSpec(loans=300, start=date(2026, 8, 1), as_of=date(2026, 11, 1),
                    profile_mix=DEFAULT_PROFILE_MIX, wireless_share=0.5, company_share=0.03,
                    parked_interval_s=7200, wireless_interval_s=28_800)  # fmt: skip
    borrowers, plans = build_book(np.random.default_rng(3), spec)
    planted: dict[str, list[str]] = {}
    for plan in plans:
        if plan.ring_id:
            planted.setdefault(plan.ring_id, []).append(plan.borrower.ref)
    assert planted  # 3 % of 300 loans
    found = score_rings(borrowers, planted)
    assert found["planted_rings"] == len(planted)
    assert (found["precision"], found["recall"]) == (1.0, 1.0)
    # rings of three or more are held together by identifiers a cap of 2 drops
    assert score_rings(borrowers, planted, max_share=2)["recall"] < 1.0
