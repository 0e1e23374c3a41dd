"""The ledger's tables: entries appended by the acts' transactions, the perfect-subtree
hashes of the Merkle tree, and the signed tree heads.

Appending is on the hot path of every act, so entries are not ORM objects: they are
deferred inserts (``store.db.defer_insert``), written with one multi-row insert when the
session flushes or commits, in the same transaction as the act."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from lienwatch import clock
from lienwatch.ledger.entries import EntryKind
from lienwatch.store.db import chunks, defer_insert, write_deferred
from lienwatch.store.tables import LedgerEntry, LedgerHead, LedgerNode


class LedgerRepository:
    """Storage verbs of the ledger on one session; the caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def append(self, kind: EntryKind, subject: str, body: bytes) -> None:
        """Add a pending entry (no leaf index yet), inserted at the session's next flush or
        commit: a plain insert, so acts in concurrent transactions never wait for each other
        here."""
        defer_insert(self.session, LedgerEntry, {
            "kind": kind.value, "subject": subject[:80], "body": body.decode(),
            "recorded_at": clock.now(),
        })  # fmt: skip

    def pending(self) -> list[tuple[int, str]]:
        """(id, body) of the entries no tree head has taken in yet, oldest first."""
        write_deferred(self.session)
        return list(self.session.execute(
            select(LedgerEntry.id, LedgerEntry.body)
            .where(LedgerEntry.leaf_index.is_(None)).order_by(LedgerEntry.id)
        ).all())  # fmt: skip

    def pending_count(self) -> int:
        write_deferred(self.session)
        return self.session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.leaf_index.is_(None))
        ) or 0  # fmt: skip

    def number(self, leaf_indices: dict[int, int]) -> None:
        """Give entries (by id) their leaf indices (one Core statement executed per entry:
        a seal numbers every act since the last one, and the ORM's bulk path costs more)."""
        entries = LedgerEntry.__table__
        numbering = (update(entries).where(entries.c.id == bindparam("entry_id"))
                     .values(leaf_index=bindparam("entry_leaf")))  # fmt: skip
        rows = [{"entry_id": entry_id, "entry_leaf": index}
                for entry_id, index in leaf_indices.items()]  # fmt: skip
        for chunk in chunks(rows):
            self.session.execute(numbering, chunk)

    def latest_head(self) -> LedgerHead | None:
        return self.session.scalar(select(LedgerHead).order_by(LedgerHead.tree_size.desc()))

    def heads(self) -> list[LedgerHead]:
        return list(self.session.scalars(select(LedgerHead).order_by(LedgerHead.tree_size)))

    def add_nodes(self, nodes: Iterable[tuple[int, int, bytes]]) -> None:
        rows = [{"level": level, "node_index": index, "hash": digest}
                for level, index, digest in nodes]  # fmt: skip
        for chunk in chunks(rows):
            self.session.execute(insert(LedgerNode.__table__), chunk)

    def nodes(self, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored subtree hashes of ``keys`` ((level, index)); missing keys are absent.
        One query, an index range per level (a row-value IN list is scanned on SQLite)."""
        by_level: dict[int, list[int]] = {}
        for level, index in set(keys):
            by_level.setdefault(level, []).append(index)
        if not by_level:
            return {}
        rows = self.session.execute(
            select(LedgerNode.level, LedgerNode.node_index, LedgerNode.hash).where(or_(*(
                and_(LedgerNode.level == level, LedgerNode.node_index.in_(indices))
                for level, indices in by_level.items()
            )))
        )  # fmt: skip
        return {(level, index): digest for level, index, digest in rows}

    def leaves(self, *, batch: int = 50_000) -> Iterator[tuple[int, str, bytes | None]]:
        """(leaf index, body, stored leaf hash or None) of the integrated entries, in index
        order, streamed."""
        query = (
            select(LedgerEntry.leaf_index, LedgerEntry.body, LedgerNode.hash)
            .outerjoin(LedgerNode, (LedgerNode.level == 0)
                       & (LedgerNode.node_index == LedgerEntry.leaf_index))
            .where(LedgerEntry.leaf_index.is_not(None))
            .order_by(LedgerEntry.leaf_index)
            .execution_options(yield_per=batch)
        )  # fmt: skip
        for row in self.session.execute(query):
            yield row.leaf_index, row.body, row.hash

    def entry(self, leaf_index: int) -> LedgerEntry | None:
        return self.session.scalar(select(LedgerEntry).where(LedgerEntry.leaf_index == leaf_index))

    def entries_of(self, subject: str) -> list[LedgerEntry]:
        write_deferred(self.session)
        return list(self.session.scalars(
            select(LedgerEntry).where(LedgerEntry.subject == subject).order_by(LedgerEntry.id)
        ))  # fmt: skip

    def bodies(self, kinds: Iterable[EntryKind], *, subject: str | None = None
               ) -> list[tuple[str, str]]:  # fmt: skip
        """(kind, body) of the entries of ``kinds`` (about ``subject`` when given), in the
        order they were recorded."""
        write_deferred(self.session)
        query = select(LedgerEntry.kind, LedgerEntry.body).where(
            LedgerEntry.kind.in_([kind.value for kind in kinds]))
        if subject is not None:
            query = query.where(LedgerEntry.subject == subject)
        return [(kind, body) for kind, body in self.session.execute(query.order_by(LedgerEntry.id))]

    def find(self, kind: EntryKind, fragment: str) -> list[LedgerEntry]:
        """Entries of ``kind`` whose body contains ``fragment`` (e.g. a document digest)."""
        write_deferred(self.session)
        return list(self.session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.kind == kind.value, LedgerEntry.body.contains(fragment))
            .order_by(LedgerEntry.id)
        ))  # fmt: skip

    def stray_nodes(self, size: int) -> int:
        """Leaf hashes stored for indices at or beyond ``size`` (nothing should be there)."""
        return self.session.scalar(
            select(func.count()).select_from(LedgerNode)
            .where(LedgerNode.level == 0, LedgerNode.node_index >= size)
        ) or 0  # fmt: skip


class StoredTree:
    """The ledger's subtree hashes as a :class:`~lienwatch.ledger.merkle.SubtreeHashes`,
    read in one query per proof (:meth:`prefetch`) and cached."""

    def __init__(self, repository: LedgerRepository) -> None:
        self.repository = repository
        self.cache: dict[tuple[int, int], bytes] = {}

    def prefetch(self, keys: Iterable[tuple[int, int]]) -> None:
        self.cache.update(self.repository.nodes(k for k in keys if k not in self.cache))

    def perfect(self, level: int, index: int) -> bytes:
        if (level, index) not in self.cache:
            self.prefetch([(level, index)])
        try:
            return self.cache[level, index]
        except KeyError:
            raise LookupError(f"ledger node {level}/{index} is missing") from None
