"""The tamper-evident ledger's use cases: record an act in its transaction, seal pending
entries under a signed tree head, verify the whole log, prove one entry to a third party,
and register e-contracts and collateral (抵押登记).

Recording is one insert (:func:`record`), so acts in concurrent transactions never wait for
each other; numbering is done by :meth:`LedgerService.seal`, one at a time (an advisory lock
on PostgreSQL), which gives the pending entries consecutive leaf indices in the order it
finds them, stores the subtree hashes they complete and signs the new head. An entry gets
its proof once a head has taken it in. See docs/ledger.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lienwatch.errors import NotFoundError
from lienwatch.ledger.collateral import (
    Registration,
    registered_data,
    registrations,
    released_data,
)
from lienwatch.ledger.entries import EntryKind, LedgerError, entry_body
from lienwatch.ledger.heads import TreeHead, key_id, raw_public_key, sign, verify_head
from lienwatch.ledger.merkle import (
    CompactRange,
    Recorder,
    consistency_path,
    covering_subtrees,
    inclusion_path,
    leaf_hash,
)
from lienwatch.store.ledger import LedgerRepository, StoredTree
from lienwatch.store.locks import LEDGER_LOCK, try_advisory_lock
from lienwatch.store.tables import LedgerEntry, LedgerHead, Loan, User, Vehicle

BUNDLE_FORMAT = "lienwatch-proof-v1"
REGISTRATION_KINDS = (EntryKind.COLLATERAL_REGISTERED, EntryKind.COLLATERAL_RELEASED)


def record(
    session: Session, kind: EntryKind, *, subject: str, at: datetime, by: str | None,
    data: dict[str, Any],
) -> bytes:  # fmt: skip
    """Write the entry of an act into the act's transaction (the one place acts are
    recorded): it commits, or rolls back, with the act. Returns the entry's canonical
    bytes (every act records one: nothing is parsed back on this path)."""
    body = entry_body(kind, subject=subject, at=at, by=by, data=data)
    LedgerRepository(session).append(kind, subject, body)
    return body


@dataclass
class Verification:
    """What ``verify`` found: the entries and heads checked and every problem, located."""

    entries: int = 0
    heads: int = 0
    pending: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "heads": self.heads,
                "pending": self.pending, "problems": self.problems}  # fmt: skip


class LedgerService:
    """The ledger's verbs on one session; the caller owns the transaction."""

    def __init__(self, session: Session, *, key: Ed25519PrivateKey | None = None,
                 public_key: Ed25519PublicKey | None = None) -> None:  # fmt: skip
        self.session = session
        self.repository = LedgerRepository(session)
        self.key = key
        self.public_key = public_key or (key.public_key() if key else None)

    # ------------------------------------------------------------------ sealing

    def seal(self, *, at: datetime) -> LedgerHead | None:
        """Number the pending entries, store the subtree hashes they complete and sign a new
        tree head at ``at``; None when nothing is pending (or another process is sealing)."""
        if self.key is None:
            raise LedgerError("key: sealing needs the ledger's signing key")
        if not try_advisory_lock(self.session, LEDGER_LOCK):
            return None
        pending = self.repository.pending()
        if not pending:
            return None
        last = self.repository.latest_head()
        mine = key_id(self.key.public_key())
        if last is not None and last.key_id != mine:  # every head must verify with one key
            raise LedgerError(f"key: the ledger's heads are signed by key {last.key_id}, and "
                              f"this key is {mine}: set [ledger] key_file to the key that "
                              "signed them; nothing was sealed")  # fmt: skip
        size = last.tree_size if last else 0
        tree = StoredTree(self.repository)
        tree.prefetch(covering_subtrees(size))
        compact = CompactRange.resume(tree, size)
        numbered, nodes = {}, []
        for entry_id, body in pending:
            numbered[entry_id] = compact.size
            nodes += compact.append(leaf_hash(body.encode()))
        self.repository.number(numbered)
        self.repository.add_nodes(nodes)
        head = TreeHead(compact.size, compact.root(), at)
        row = LedgerHead(tree_size=head.tree_size, root=head.root, signed_at=at, key_id=mine,
                         signature=sign(head, self.key))  # fmt: skip
        self.session.add(row)
        self.session.flush()
        return row

    # ------------------------------------------------------------------ verifying

    def verify(self) -> Verification:
        """Recompute the tree from the entries and check every signed head against it: a
        changed entry is named by its index (its content no longer matches its recorded
        hash), a missing one by the gap, a reordered one by both places, and a head whose
        root the entries no longer give by its size (with the range it covers)."""
        report = Verification(pending=self.repository.pending_count())
        heads = self.repository.heads()
        report.heads = len(heads)
        mine = key_id(self.public_key) if self.public_key is not None else None
        for head in heads:
            if mine is not None and head.key_id != mine:  # the wrong key file, or a forgery
                report.problems.append(f"head {head.tree_size}: signed by key {head.key_id}, "
                                       f"not by this key {mine} ([ledger] key_file)")
            elif self.public_key is not None and not verify_head(_head(head), head.signature,
                                                                 self.public_key):  # fmt: skip
                report.problems.append(f"head {head.tree_size}: the signature does not verify")
        compact, expected, waiting = CompactRange(), 0, list(heads)
        previous = 0
        for index, body, stored in self.repository.leaves():
            if index != expected:
                report.problems.append(_gap(expected, index))
                expected = index
            leaf = leaf_hash(body.encode())
            if stored is None:
                report.problems.append(f"entry {index}: no hash was recorded for it")
            elif stored != leaf:
                report.problems.append(f"entry {index}: its content is not what was recorded")
            while compact.size < index:  # keep the tree's shape across a gap
                compact.append(bytes(32))
            compact.append(leaf)
            expected += 1
            while waiting and waiting[0].tree_size == compact.size:
                previous = _check_root(waiting.pop(0), compact, previous, report)
        report.entries = expected
        for head in waiting:
            report.problems.append(
                f"head {head.tree_size}: entries {expected} to {head.tree_size - 1} are missing"
            )
        if stray := self.repository.stray_nodes(expected):
            report.problems.append(f"{stray} recorded hashes have no entry after entry "
                                   f"{expected - 1}")  # fmt: skip
        return report

    # ------------------------------------------------------------------ reading

    def latest_head(self) -> dict[str, Any] | None:
        """The latest signed tree head as shown (size, root, time, key id, signature) with the
        public key to check it (None when this process has no key); None before the first
        seal."""
        head = self.repository.latest_head()
        if head is None:
            return None
        key = base64.b64encode(raw_public_key(self.public_key)).decode() if self.public_key \
            else None
        return {**_shown(head), "public_key": key}

    def entries(self, *, subject: str) -> list[dict[str, Any]]:
        """The entries about ``subject`` (a loan reference, a VIN, a borrower's reference) in
        the order recorded: leaf index (None while pending), kind and canonical body."""
        return [{"leaf_index": e.leaf_index, "kind": e.kind, "body": e.body}
                for e in self.repository.entries_of(subject)]  # fmt: skip

    # ------------------------------------------------------------------ proving

    def prove(self, *, leaf_index: int) -> dict[str, Any]:
        """A self-contained bundle proving entry ``leaf_index`` is in the log: the entry, its
        inclusion path to the latest signed head, the head and the public key."""
        entry = self.repository.entry(leaf_index)
        head = self.repository.latest_head()
        if entry is None or head is None or leaf_index >= head.tree_size:
            raise NotFoundError(f"entry: no sealed entry {leaf_index} (seal pending entries "
                                "with `lienwatch ledger seal`)")  # fmt: skip
        if self.public_key is None:
            raise LedgerError("key: a proof carries the ledger's public key")
        tree = StoredTree(self.repository)
        shape = Recorder()
        inclusion_path(shape, leaf_index, head.tree_size)
        tree.prefetch(shape.asked)
        path = inclusion_path(tree, leaf_index, head.tree_size)
        return {
            "format": BUNDLE_FORMAT,
            "entry": entry.body,
            "leaf_index": leaf_index,
            "inclusion_path": [h.hex() for h in path],
            "head": _shown(head),
            "public_key": base64.b64encode(raw_public_key(self.public_key)).decode(),
        }  # fmt: skip

    def prove_consistency(self, *, old_size: int, new_size: int) -> dict[str, Any]:
        """That the signed head of ``old_size`` entries is a prefix of the one of
        ``new_size`` (nothing recorded before was changed since): both heads and the
        consistency path (RFC 9162 §2.1.4), for an auditor who kept the older head."""
        heads = {head.tree_size: head for head in self.repository.heads()}
        missing = [size for size in (old_size, new_size) if size not in heads]
        if missing:
            raise NotFoundError(f"size: no signed head of {missing[0]} entries")
        tree = StoredTree(self.repository)
        shape = Recorder()
        consistency_path(shape, old_size, new_size)
        tree.prefetch(shape.asked)
        return {
            "old": _shown(heads[old_size]), "new": _shown(heads[new_size]),
            "consistency_path": [h.hex() for h in consistency_path(tree, old_size, new_size)],
        }  # fmt: skip

    # ------------------------------------------------------------------ registrations

    def register_contract(
        self, *, document: bytes, loan_ref: str, parties: list[str], signed_at: datetime,
        method: str, by: str, at: datetime,
    ) -> dict[str, Any]:  # fmt: skip
        """Record an electronic contract by the SHA-256 of its signed document; returns the
        entry's fields."""
        if not parties:
            raise LedgerError("party: a contract needs its parties")
        require_user(self.session, by)
        digest = hashlib.sha256(document).hexdigest()
        if self.repository.find(EntryKind.CONTRACT, f'"sha256":"{digest}"'):
            raise LedgerError(f"document: this document (sha256 {digest[:16]}…) is registered "
                              "already")  # fmt: skip
        data = {"sha256": digest, "parties": parties, "method": method,
                "signed_at": signed_at.isoformat(), "bytes": len(document)}  # fmt: skip
        return json.loads(record(self.session, EntryKind.CONTRACT, subject=loan_ref, at=at,
                                 by=by, data=data))

    def find_contract(self, document: bytes) -> LedgerEntry | None:
        """The entry that registered exactly this document, if any."""
        digest = hashlib.sha256(document).hexdigest()
        found = self.repository.find(EntryKind.CONTRACT, f'"sha256":"{digest}"')
        return found[0] if found else None

    def register_collateral(
        self, *, vin: str, plate: str, authority: str, certificate: str, registered_on: date,
        loan_ref: str, by: str, at: datetime,
    ) -> dict[str, Any]:  # fmt: skip
        """Record the mortgage registration of a vehicle (抵押登记) for a loan on it."""
        require_user(self.session, by)
        self._check_pledge(vin, loan_ref)
        if self.collateral_registration(vin) is not None:
            raise LedgerError(f"vin: vehicle {vin} has an unreleased registration already")
        data = registered_data(loan=loan_ref, plate=plate, authority=authority,
                               certificate=certificate, registered_on=registered_on)
        return json.loads(record(self.session, EntryKind.COLLATERAL_REGISTERED, subject=vin,
                                 at=at, by=by, data=data))

    def release_collateral(
        self, *, vin: str, released_on: date, certificate: str, by: str, at: datetime
    ) -> dict[str, Any]:
        """Record the release of a vehicle's mortgage registration."""
        require_user(self.session, by)
        registration = self.collateral_registration(vin)
        if registration is None:
            raise LedgerError(f"vin: vehicle {vin} has no registration to release")
        if released_on < registration.registered_on:
            raise LedgerError(f"released_on: {released_on} is before the registration on "
                              f"{registration.registered_on}")  # fmt: skip
        data = released_data(released_on=released_on, certificate=certificate)
        return json.loads(record(self.session, EntryKind.COLLATERAL_RELEASED, subject=vin,
                                 at=at, by=by, data=data))

    def _check_pledge(self, vin: str, loan_ref: str) -> None:
        """The loan exists and is secured on the vehicle ``vin``."""
        pledged = self.session.scalar(select(Vehicle.vin).join(
            Loan, Loan.vehicle_id == Vehicle.id).where(Loan.ref == loan_ref))
        if pledged is None:
            raise NotFoundError(f"loan: no loan {loan_ref!r}")
        if pledged != vin:
            raise LedgerError(f"vin: loan {loan_ref} is secured on vehicle {pledged}, not {vin}")

    def collateral_registration(self, vin: str) -> Registration | None:
        """The vehicle's registration still in force (not released), if any."""
        found = collateral_registrations(self.session, vin=vin)
        return found[-1] if found and found[-1].released_on is None else None


def require_user(session: Session, username: str) -> None:
    """Refuse an act by someone who is not a user (NotFoundError naming ``--by``'s value)."""
    if session.scalar(select(User.id).where(User.username == username)) is None:
        raise NotFoundError(f"by: no user {username!r} (add one with `lienwatch user add`)")


def collateral_registrations(session: Session, *, vin: str | None = None) -> list[Registration]:
    """Every mortgage registration the ledger holds (of one vehicle when ``vin`` is given),
    each with its release when one followed, in the order recorded."""
    return registrations(LedgerRepository(session).bodies(REGISTRATION_KINDS, subject=vin))


def _shown(head: LedgerHead) -> dict[str, Any]:
    return {"tree_size": head.tree_size, "root": head.root.hex(),
            "signed_at": head.signed_at.isoformat(),
            "signature": base64.b64encode(head.signature).decode()}  # fmt: skip


def _head(row: LedgerHead) -> TreeHead:
    return TreeHead(row.tree_size, row.root, row.signed_at)


def _gap(expected: int, found: int) -> str:
    """The entries missing before ``found`` (indices are unique and read in order)."""
    if found - expected > 1:
        return f"entries {expected} to {found - 1} are missing"
    return f"entry {expected} is missing"


def _check_root(head: LedgerHead, compact: CompactRange, previous: int,
                report: Verification) -> int:  # fmt: skip
    if compact.root() != head.root:
        report.problems.append(
            f"head {head.tree_size}: the entries no longer give its root (a change among "
            f"entries {previous} to {head.tree_size - 1})"
        )
    return head.tree_size


def latest_head(session: Session) -> LedgerHead | None:
    """The signed head of the largest tree (None before the first seal)."""
    return session.scalars(
        select(LedgerHead).order_by(LedgerHead.tree_size.desc()).limit(1)
    ).first()


def recorded_between(session: Session, since: datetime | None, at: datetime) -> dict[str, int]:
    """Entries recorded and heads signed in ``[since, at]`` (all by ``at`` without ``since``)."""

    def count(model: Any, column: Any) -> int:
        window = column <= at if since is None else column.between(since, at)
        return session.scalar(select(func.count()).select_from(model).where(window)) or 0

    return {"entries": count(LedgerEntry, LedgerEntry.recorded_at),
            "heads": count(LedgerHead, LedgerHead.signed_at)}  # fmt: skip
