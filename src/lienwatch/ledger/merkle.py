"""The Merkle tree of a transparency log, as RFC 9162 §2.1 defines it: hashes, inclusion and
consistency proofs, and the verification of consistency (that of inclusion is in
``verify_proof.py``, the file a third party runs). Pure: leaves in, hashes out.

Leaf hash ``SHA-256(0x00 ‖ entry)``, node hash ``SHA-256(0x01 ‖ left ‖ right)``; a tree of
``n`` leaves splits at ``k``, the largest power of two below ``n``. The functions that build
proofs take a :class:`SubtreeHashes` source, so a stored log answers from the hashes of the
perfect subtrees it keeps (``O(log² n)`` lookups) and a list of leaves answers the same way in
tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n`` ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class SubtreeHashes(Protocol):
    def perfect(self, level: int, index: int) -> bytes:
        """The hash of the perfect subtree of ``2**level`` leaves starting at leaf
        ``index * 2**level``."""
        ...


def range_hash(source: SubtreeHashes, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range the RFC's recursion produces: it splits into perfect
    subtrees aligned on their size, read from ``source``."""
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and start % n == 0:
        return source.perfect(n.bit_length() - 1, start // n)
    k = split(n)
    return node_hash(range_hash(source, start, start + k), range_hash(source, start + k, end))


def inclusion_path(source: SubtreeHashes, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf to root."""
    if not 0 <= index < size:
        raise ValueError(f"index: {index} is not in a tree of {size} entries")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split(end - start)
        if index < start + k:
            path.append(range_hash(source, start + k, end))
            end = start + k
        else:
            path.append(range_hash(source, start, start + k))
            start += k
    return path[::-1]


def consistency_path(source: SubtreeHashes, old: int, new: int) -> list[bytes]:
    """PROOF(old, D[new]) (RFC 9162 §2.1.4.1): the tree of ``old`` entries is a prefix of
    the tree of ``new``."""
    if not 0 < old <= new:
        raise ValueError(f"old: {old} must be between 1 and {new}")
    return _subproof(source, old, 0, new, whole=True)


def _subproof(source: SubtreeHashes, m: int, start: int, end: int, *, whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:end], whole), depth ``log n``."""
    n = end - start
    if m == n:
        return [] if whole else [range_hash(source, start, end)]
    k = split(n)
    if m <= k:
        return [*_subproof(source, m, start, start + k, whole=whole),
                range_hash(source, start + k, end)]  # fmt: skip
    return [*_subproof(source, m - k, start + k, end, whole=False),
            range_hash(source, start, start + k)]  # fmt: skip


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: whether the tree of ``old`` entries with ``old_root`` is a prefix
    of the tree of ``new`` entries with ``new_root``."""
    if old == new:
        return not path and old_root == new_root
    if old == 0 or old > new or not path:
        return False
    path = list(path)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0


def covering_subtrees(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees, as (level, index), that cover leaves ``[0, size)``, largest
    first: one per set bit of ``size``."""
    found, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            found.append((level, start >> level))
            start += 1 << level
    return found


class Recorder:
    """A :class:`SubtreeHashes` that answers zeros and notes what was asked: the subtrees a
    proof will read, known before reading them (a proof's shape does not depend on hashes)."""

    def __init__(self) -> None:
        self.asked: set[tuple[int, int]] = set()

    def perfect(self, level: int, index: int) -> bytes:
        self.asked.add((level, index))
        return bytes(32)


class CompactRange:
    """The root of a growing tree in ``O(log n)`` memory: the hashes of the perfect subtrees
    that cover the leaves so far, largest first. Appending a leaf also yields the perfect
    subtrees it completes, which a stored log keeps for its proofs."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (level, hash)

    @classmethod
    def resume(cls, source: SubtreeHashes, size: int) -> CompactRange:
        """The range of a tree of ``size`` leaves, from its perfect subtrees in ``source``."""
        compact = cls()
        for level, index in covering_subtrees(size):
            compact._stack.append((level, source.perfect(level, index)))
        compact.size = size
        return compact

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return the perfect subtrees completed as (level, index, hash),
        the leaf itself first."""
        done = [(0, self.size, leaf)]
        level, digest = 0, leaf
        while self._stack and self._stack[-1][0] == level:
            _, left = self._stack.pop()
            level, digest = level + 1, node_hash(left, digest)
            done.append((level, self.size >> level, digest))
        self._stack.append((level, digest))
        self.size += 1
        return done

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        digest = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            digest = node_hash(left, digest)
        return digest


class Leaves:
    """Perfect subtree hashes computed from a list of leaf hashes (tests, small logs)."""

    def __init__(self, leaves: Iterable[bytes]) -> None:
        self.levels: list[list[bytes]] = [list(leaves)]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append(
                [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            )

    def perfect(self, level: int, index: int) -> bytes:
        return self.levels[level][index]
