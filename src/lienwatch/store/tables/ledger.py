"""The tamper-evident ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from lienwatch import clock
from lienwatch.store.tables.base import Base, BigKey


class LedgerEntry(Base):
    """An act in the tamper-evident ledger: its canonical JSON ``body``, written in the
    transaction of the act. ``leaf_index`` is given when a tree head takes the entry in
    (numbered from 0 in that order, never changed); until then the entry is pending."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigKey, primary_key=True)
    leaf_index: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # contracts found by kind
    subject: Mapped[str] = mapped_column(String(80), index=True)  # a loan ref, a VIN
    body: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(default=clock.now)


class LedgerNode(Base):
    """The hash of a perfect subtree of the ledger's Merkle tree: ``2**level`` leaves from
    leaf ``node_index * 2**level`` (level 0: the leaf hashes). Proofs are read from these."""

    __tablename__ = "ledger_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    node_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerHead(Base):
    """A signed tree head: the ledger's size and root at ``signed_at``, Ed25519-signed with
    the key ``key_id`` (kept outside the database)."""

    __tablename__ = "ledger_heads"

    id: Mapped[int] = mapped_column(primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger, unique=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_at: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))

