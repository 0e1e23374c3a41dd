"""The ledger's signing key, kept in a file outside the database: whoever can change the
database cannot sign a tree head."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from lienwatch.ledger.entries import LedgerError

log = logging.getLogger(__name__)


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key in ``path`` (PEM, PKCS#8), made on first use with mode 0600.

    Several processes may start at once on a new installation (a worker per core): the key
    is written whole to a file of this process's own and linked into place, which fails when
    another process linked its key first; then that one is used, never half a file."""
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process made the key first: use its key
        else:
            log.warning("ledger: made a new signing key in %s; keep it safe and out of the "
                        "database's backups", path)  # fmt: skip
        finally:
            draft.unlink()
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise LedgerError(
            f"ledger.key_file: {path} is not an unencrypted PEM key ({exc})"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerError(f"ledger.key_file: {path} holds a {type(key).__name__}, not Ed25519")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey | None:
    """The public half of the key in ``path``; None where there is no key file (reading never
    makes a key)."""
    return load_or_create_key(path).public_key() if path.is_file() else None
