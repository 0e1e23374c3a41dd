"""The Merkle tree against RFC 9162's definitions, written out naively here, on random trees."""

from __future__ import annotations

import hashlib
import random

import pytest

from lienwatch.ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    Leaves,
    consistency_path,
    inclusion_path,
    leaf_hash,
    range_hash,
    verify_consistency,
)
from lienwatch.ledger.verify_proof import included as verify_inclusion


def mth(entries: list[bytes]) -> bytes:
    """MTH(D[n]) exactly as RFC 9162 §2.1.1 defines it."""
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = 1
    while k * 2 < len(entries):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(entries[:k]) + mth(entries[k:])).digest()


def path(m: int, entries: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1."""
    if len(entries) == 1:
        return []
    k = 1
    while k * 2 < len(entries):
        k *= 2
    if m < k:
        return [*path(m, entries[:k]), mth(entries[k:])]
    return [*path(m - k, entries[k:]), mth(entries[:k])]


def subproof(m: int, entries: list[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1."""
    if m == len(entries):
        return [] if whole else [mth(entries)]
    k = 1
    while k * 2 < len(entries):
        k *= 2
    if m <= k:
        return [*subproof(m, entries[:k], whole), mth(entries[k:])]
    return [*subproof(m - k, entries[k:], False), mth(entries[:k])]


def entries(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(0, 40)) for _ in range(n)]


@pytest.mark.parametrize("seed", range(3))
def test_roots_and_proofs_are_the_rfcs_on_random_trees(seed):
    data = entries(random.Random(seed).randint(40, 70), seed)
    tree = Leaves(leaf_hash(d) for d in data)
    compact = CompactRange()
    for n in range(1, len(data) + 1):
        compact.append(leaf_hash(data[n - 1]))
        root = mth(data[:n])
        assert range_hash(tree, 0, n) == root == compact.root()
        for m in range(n):
            proof = inclusion_path(tree, m, n)
            assert proof == path(m, data[:n])
            assert verify_inclusion(leaf_hash(data[m]), m, n, proof, root)
        for old in range(1, n + 1):
            proof = consistency_path(tree, old, n)
            assert proof == subproof(old, data[:n], True)
            assert verify_consistency(old, n, mth(data[:old]), root, proof)


def test_a_wrong_leaf_index_root_or_proof_fails_verification():
    data = entries(13, 9)
    tree = Leaves(leaf_hash(d) for d in data)
    root = mth(data)
    proof = inclusion_path(tree, 5, 13)
    assert not verify_inclusion(leaf_hash(data[6]), 5, 13, proof, root)
    assert not verify_inclusion(leaf_hash(data[5]), 6, 13, proof, root)
    assert not verify_inclusion(leaf_hash(data[5]), 5, 13, proof, mth(data[:12]))
    assert not verify_inclusion(leaf_hash(data[5]), 5, 13, proof[:-1], root)
    assert not verify_inclusion(leaf_hash(data[5]), 13, 13, proof, root)
    bent = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    assert not verify_inclusion(leaf_hash(data[5]), 5, 13, bent, root)
    old = consistency_path(tree, 6, 13)
    assert not verify_consistency(6, 13, mth(data[:5]), root, old)
    assert not verify_consistency(6, 13, mth(data[:6]), mth(data[:12]), old)
    assert not verify_consistency(6, 13, mth(data[:6]), root, old[1:])
    changed = [*data[:3], b"forged", *data[4:]]  # history rewritten before entry 6
    assert not verify_consistency(6, 13, mth(changed[:6]), root, old)


def test_the_compact_range_yields_each_perfect_subtree_once():
    data = entries(11, 2)
    tree = Leaves(leaf_hash(d) for d in data)
    compact, seen = CompactRange(), {}
    for d in data:
        for level, index, digest in compact.append(leaf_hash(d)):
            assert (level, index) not in seen
            seen[level, index] = digest
    assert seen == {(level, index): tree.perfect(level, index)
                    for level in range(len(tree.levels))
                    for index in range(len(tree.levels[level]))}  # fmt: skip
    assert CompactRange().root() == EMPTY_ROOT


def test_a_compact_range_resumes_from_the_subtrees_of_its_size():
    data = entries(45, 4)
    tree = Leaves(leaf_hash(d) for d in data)
    for size in (1, 2, 7, 32, 44):
        resumed = CompactRange.resume(tree, size)
        for d in data[size:]:
            resumed.append(leaf_hash(d))
        assert resumed.root() == mth(data)
