"""Fraud rings on a million applications: lienwatch.risk.rings.find_rings against the bare
components in the same run.

The book: ``--applications`` applications with five identifiers each (phone, device, address,
bank account, employer phone), so five links each (5,000,000 for 1,000,000). Most identifiers
are the applicant's own; families share an address (5 % of applicants, in pairs), employers
are shared by a few colleagues, 2 % of applicants give one of 50 dealers' phones as employer
phone (hubs, dropped above ``--max-share``), and ``--rings`` planted rings of 3 to 12
applications share devices, bank accounts and phones.

Baselines, same links, same run: scipy's connected_components alone on the raw bipartite
graph (no hub filter, no evidence, no score), and with ``--networkx`` networkx's
connected_components on the filtered application graph (slow: minutes at full size).

    python bench/rings.py [--applications 1000000] [--rings 2000] [--max-share 20] [--networkx]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lienwatch.risk.rings import Links, find_rings

KINDS = ("phone", "device", "address", "bank_account", "employer_phone")


def book(n: int, rings: int, seed: int = 0) -> tuple[Links, np.ndarray]:
    """The links and, per application, its planted ring (−1: none)."""
    rng = np.random.default_rng(seed)
    own = np.arange(n, dtype=np.int64)
    ident = np.stack([own + k * n for k in range(len(KINDS))])  # (kind, application)
    # families: pairs sharing an address
    family = rng.choice(n, size=n // 20 // 2 * 2, replace=False).reshape(-1, 2)
    ident[2, family[:, 1]] = ident[2, family[:, 0]]
    # employers: 1..8 colleagues share the employer's phone
    ident[4] = 4 * n + rng.integers(0, n // 3, n)
    dealers = rng.choice(n, size=n // 50, replace=False)
    ident[4, dealers] = 5 * n + rng.integers(0, 50, dealers.size)
    # planted rings: members chained through a device, a bank account or a phone
    planted = np.full(n, -1, dtype=np.int64)
    sizes = rng.integers(3, 13, rings)
    members = rng.choice(n, size=int(sizes.sum()), replace=False)
    start = 0
    for ring, size in enumerate(sizes):
        people = members[start : start + size]
        start += size
        planted[people] = ring
        for a, b in itertools.pairwise(people):
            kind = rng.choice([0, 1, 3])  # phone, device, bank account
            ident[kind, b] = ident[kind, a]
    application = np.tile(own, len(KINDS))
    identifier = ident.ravel()
    used = np.zeros(6 * n, dtype=bool)
    used[identifier] = True
    codes = np.flatnonzero(used)  # identifiers renumbered 0..m-1
    identifier = (np.cumsum(used) - 1)[identifier]
    kind = np.minimum(codes // n, 4)  # the dealers' phones are employer phones
    return Links(application, identifier, kind, KINDS, n), planted


def bare_components(links: Links) -> int:
    """The baseline: connected components of the raw application — identifier graph."""
    n, m = links.applications, links.kind.size
    graph = coo_matrix((np.ones(links.application.size, dtype=np.int8),
                        (links.application, links.identifier + n)), shape=(n + m, n + m))
    return connected_components(graph.tocsr(), directed=False)[0]  # fmt: skip


def networkx_components(links: Links, max_share: int) -> int:
    import networkx

    holders = np.bincount(links.identifier)
    keep = holders[links.identifier] <= max_share
    graph = networkx.Graph()
    graph.add_nodes_from(range(links.applications))
    graph.add_edges_from(zip(links.application[keep].tolist(),
                             (links.identifier[keep] + links.applications).tolist(),
                             strict=True))  # fmt: skip
    return networkx.number_connected_components(graph)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=1_000_000)
    parser.add_argument("--rings", type=int, default=2000)
    parser.add_argument("--max-share", type=int, default=20)
    parser.add_argument("--networkx", action="store_true")
    args = parser.parse_args()
    links, planted = book(args.applications, args.rings)
    print(f"{args.applications:,} applications, {links.application.size:,} links, "
          f"{links.kind.size:,} identifiers")  # fmt: skip
    find_rings(Links(links.application[:1000], links.identifier[:1000], links.kind, KINDS,
                     links.applications), max_share=args.max_share)  # warm up: imports
    started = time.perf_counter()
    rings = find_rings(links, max_share=args.max_share)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    bare_components(links)
    bare = time.perf_counter() - started
    in_ring = rings.ring >= 0
    recall = float((in_ring & (planted >= 0)).sum() / (planted >= 0).sum())
    top = rings.ring[(planted >= 0)]
    top_k = np.isin(np.arange(args.rings), top[top >= 0]).sum()
    print(f"lienwatch find_rings: {ours:.2f} s, {len(rings):,} candidate rings "
          f"(largest {int(rings.size.max()) if len(rings) else 0}), planted members found "
          f"{recall:.1%}, {top_k} of the {args.rings} highest-scoring rings hold planted members")
    print(f"bare csgraph components (no hub filter, no evidence): {bare:.2f} s; "
          f"ratio lienwatch / bare x{ours / bare:.2f}")
    if args.networkx:
        started = time.perf_counter()
        networkx_components(links, args.max_share)
        slow = time.perf_counter() - started
        print(f"networkx components: {slow:.2f} s; lienwatch is x{slow / ours:.1f} faster")


if __name__ == "__main__":
    main()
