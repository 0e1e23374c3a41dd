"""Signed tree heads: the log's size and root at a moment, signed with Ed25519, so that a
third party holding the public key can check any proof against them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lienwatch.ledger.entries import canonical


@dataclass(frozen=True, slots=True)
class TreeHead:
    tree_size: int
    root: bytes
    signed_at: datetime

    def message(self) -> bytes:
        """The bytes signed: canonical JSON of the size, the root (hex) and the time."""
        return canonical({
            "log": "lienwatch", "tree_size": self.tree_size, "root": self.root.hex(),
            "signed_at": self.signed_at.isoformat(),
        })  # fmt: skip


def sign(head: TreeHead, key: Ed25519PrivateKey) -> bytes:
    return key.sign(head.message())


def verify_head(head: TreeHead, signature: bytes, public_key: Ed25519PublicKey) -> bool:
    try:
        public_key.verify(signature, head.message())
    except InvalidSignature:
        return False
    return True


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short name of the key: the first 16 hex digits of the SHA-256 of its raw bytes."""
    return hashlib.sha256(raw_public_key(public_key)).hexdigest()[:16]
