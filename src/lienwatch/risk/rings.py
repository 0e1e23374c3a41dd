"""Fraud rings: applications linked through shared identifiers (phone, device, address, bank
account, employer phone, emergency contact).

The links form a bipartite graph, application — identifier. Identifiers held by more than
``max_share`` applications (a dealer's phone, a call centre's address) say nothing about a
ring and are dropped first; identifiers held by one application link nothing. The connected
components of what remains (``scipy.sparse.csgraph.connected_components``) with two or more
applications are the candidate rings, each with the identifiers its members share as evidence
and a risk score for ordering the review queue:

    strength = Σ over shared identifiers of weight(kind) · (holders − 1), divided by (size − 1)
    score    = (1 − e^(−strength)) · (1 − 1/size)

``strength`` is 1 for a ring held together by one chain of strong identifiers and grows as
members share more of them; the second factor favours larger rings. The score ranks rings for
review; it is not a probability of fraud.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lienwatch.errors import LienwatchError

#: How much sharing one identifier of a kind says (a bank account or device more than an
#: address, which families share); kinds not listed weigh 0.5.
DEFAULT_WEIGHTS: dict[str, float] = {
    "device": 1.0, "bank_account": 1.0, "id_number": 1.0, "phone": 0.8,
    "employer_phone": 0.5, "emergency_contact": 0.5, "address": 0.3,
}  # fmt: skip


class RingError(LienwatchError, ValueError):
    """Links that cannot form a graph (mismatched lengths, indexes out of range)."""


@dataclass(frozen=True, slots=True)
class Links:
    """Application — identifier links as integer arrays: ``application[k]`` holds
    ``identifier[k]``; ``kind[i]`` is the index in ``kinds`` of identifier ``i``'s kind."""

    application: np.ndarray
    identifier: np.ndarray
    kind: np.ndarray
    kinds: tuple[str, ...]
    applications: int


def encode_links(
    applications: Sequence[str], held: Iterable[tuple[str, str, str]]
) -> tuple[Links, list[tuple[str, str]]]:
    """Links from (application id, kind, value) triples, and each identifier code's
    (kind, value). Empty values link nothing."""
    position = {a: i for i, a in enumerate(applications)}
    codes: dict[tuple[str, str], int] = {}
    kinds: dict[str, int] = {}
    app, ident = [], []
    for application, kind, value in held:
        if not value:
            continue
        if application not in position:
            raise RingError(f"links: unknown application {application!r}")
        kinds.setdefault(kind, len(kinds))
        app.append(position[application])
        ident.append(codes.setdefault((kind, value), len(codes)))
    kind = np.array([kinds[k] for k, _ in codes], dtype=np.int64)
    links = Links(np.array(app, dtype=np.int64), np.array(ident, dtype=np.int64), kind,
                  tuple(kinds), len(applications))  # fmt: skip
    return links, list(codes)


@dataclass(frozen=True, slots=True)
class Rings:
    """Candidate rings: ``ring[a]`` is the ring of application ``a`` (−1: none); ``size``,
    ``score`` per ring; the shared identifiers (codes) of each ring as evidence."""

    ring: np.ndarray
    size: np.ndarray
    score: np.ndarray
    shared: np.ndarray  # identifier codes kept, grouped by ring
    shared_ring: np.ndarray  # the ring of each kept identifier (sorted)
    holders: np.ndarray  # how many applications hold each kept identifier

    def __len__(self) -> int:
        return int(self.size.size)

    def members(self, ring: int) -> np.ndarray:
        """The applications of ``ring``."""
        return np.flatnonzero(self.ring == ring)

    def evidence(self, ring: int) -> list[tuple[int, int]]:
        """The identifiers ``ring``'s members share: (identifier code, holders)."""
        lo, hi = np.searchsorted(self.shared_ring, [ring, ring + 1])
        return [(int(i), int(h)) for i, h in zip(self.shared[lo:hi], self.holders[lo:hi],
                                                  strict=True)]  # fmt: skip


def find_rings(
    links: Links, *, max_share: int, weights: Mapping[str, float] = DEFAULT_WEIGHTS
) -> Rings:
    """The candidate rings of ``links`` after dropping identifiers held by more than
    ``max_share`` applications (numbered from the largest score down)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if max_share < 2:
        raise RingError(f"max_share: {max_share} links nothing; use 2 or more")
    if links.application.shape != links.identifier.shape:
        raise RingError("links: application and identifier arrays differ in length")
    identifiers, n = links.kind.size, links.applications
    # distinct (application, identifier) pairs, sorted by identifier: one application listing
    # a phone twice holds it once (a sort, not np.unique, which is far slower at this size)
    pairs = np.sort(links.identifier * n + links.application)
    pairs = pairs[np.diff(pairs, prepend=-1) != 0]
    ident, app = np.divmod(pairs, n)
    holders = np.bincount(ident, minlength=identifiers)
    keep = (holders[ident] >= 2) & (holders[ident] <= max_share)
    ident, app = ident[keep], app[keep]
    # each holder linked to the identifier's first holder: a star per identifier, on the
    # applications alone (half the nodes of the bipartite graph, the same components)
    first_of_group = np.diff(ident, prepend=-1) != 0
    starts = np.flatnonzero(first_of_group)
    first = app[starts][np.cumsum(first_of_group) - 1]
    graph = coo_matrix((np.ones(app.size, dtype=np.int8), (first, app)), shape=(n, n)).tocsr()
    _, label = connected_components(graph, directed=False)
    counts = np.bincount(label)
    kept_ids = ident[starts]
    id_label = label[app[starts]]
    kind_weight = np.array([weights.get(k, 0.5) for k in links.kinds])[links.kind[kept_ids]]
    strength = np.bincount(id_label, weights=kind_weight * (holders[kept_ids] - 1),
                           minlength=counts.size)  # fmt: skip
    ring_labels = np.flatnonzero(counts >= 2)
    size = counts[ring_labels]
    score = (1 - np.exp(-strength[ring_labels] / (size - 1))) * (1 - 1 / size)
    order = np.lexsort((ring_labels, -score))  # highest score first, ties by label
    number = np.full(counts.size, -1, dtype=np.int64)
    number[ring_labels[order]] = np.arange(order.size)
    ring = number[label]  # -1 outside the rings
    shared_ring = number[id_label]
    by_ring = np.argsort(shared_ring, kind="stable")
    return Rings(ring, size[order], score[order], kept_ids[by_ring], shared_ring[by_ring],
                 holders[kept_ids][by_ring])  # fmt: skip
