"""Fraud rings: links through shared identifiers, hubs dropped, evidence, ordering."""

from __future__ import annotations

import numpy as np
import pytest

from lienwatch.risk.rings import RingError, encode_links, find_rings

APPS = ["a", "b", "c", "d", "e", "f", "g", "h"]
HELD = [
    ("a", "device", "D1"), ("b", "device", "D1"), ("b", "phone", "P1"), ("c", "phone", "P1"),
    ("a", "bank_account", "K1"), ("c", "bank_account", "K1"),  # a-b-c: a dense ring
    ("d", "address", "X1"), ("e", "address", "X1"),  # d-e: a weak pair
    *((app, "employer_phone", "DEALER") for app in "abcdefg"),  # a hub: dropped
    ("h", "phone", "P9"), ("h", "phone", "P9"),  # alone, listing its phone twice
]  # fmt: skip


def test_rings_are_components_of_shared_identifiers_without_hubs():
    links, identifiers = encode_links(APPS, HELD)
    rings = find_rings(links, max_share=5)
    assert len(rings) == 2
    groups = {frozenset(APPS[i] for i in rings.members(k)) for k in range(len(rings))}
    assert groups == {frozenset("abc"), frozenset("de")}
    assert rings.ring[APPS.index("f")] == -1 and rings.ring[APPS.index("h")] == -1
    first = {identifiers[i] for i, _ in rings.evidence(0)}
    assert first == {("device", "D1"), ("phone", "P1"), ("bank_account", "K1")}
    assert rings.score[0] > rings.score[1]  # the dense ring first
    assert list(rings.size) == [3, 2]


def test_raising_the_share_limit_keeps_the_hub_and_merges_everything():
    links, _ = encode_links(APPS, HELD)
    rings = find_rings(links, max_share=7)
    assert len(rings) == 1 and rings.size[0] == 7


def test_bad_links_are_refused():
    with pytest.raises(RingError, match="unknown application"):
        encode_links(["a"], [("z", "phone", "1")])
    links, _ = encode_links(APPS, HELD)
    with pytest.raises(RingError, match="max_share"):
        find_rings(links, max_share=1)


def test_no_links_no_rings():
    links, _ = encode_links(["a", "b"], [])
    rings = find_rings(links, max_share=5)
    assert len(rings) == 0 and np.all(rings.ring == -1)
