"""Fraud rings on the simulator's book, scored against its planted rings.

A top-layer module: it reads the simulator's labels, which :mod:`lienwatch.risk.rings` never
sees. Each borrower is an application linked through its phone and address (the identifiers
the simulator's rings share); a borrower is flagged when it falls in a candidate ring, and a
true ring member when the ground truth lists it in a ring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lienwatch.risk.rings import encode_links, find_rings
from lienwatch.sim.records import SimBorrower


def score_rings(
    borrowers: Sequence[SimBorrower], planted_rings: Mapping[str, list[str]], *,
    max_share: int = 20,
) -> dict[str, Any]:  # fmt: skip
    """Candidate rings among the borrowers, with precision and recall on the members of the
    planted rings (ring id -> borrower refs, the simulator's ``truth.rings``)."""
    refs = [b.ref for b in borrowers]
    held = ((b.ref, kind, value) for b in borrowers
            for kind, value in (("phone", b.phone), ("address", b.address)))  # fmt: skip
    links, _ = encode_links(refs, held)
    rings = find_rings(links, max_share=max_share)
    flagged = {refs[i] for i, ring in enumerate(rings.ring) if ring >= 0}
    planted = {ref for members in planted_rings.values() for ref in members}
    hits = len(flagged & planted)
    return {
        "candidate_rings": len(rings),
        "planted_rings": len(planted_rings),
        "flagged_borrowers": len(flagged),
        "planted_members": len(planted),
        "precision": round(hits / len(flagged), 4) if flagged else None,
        "recall": round(hits / len(planted), 4) if planted else None,
        "max_share": max_share,
    }
