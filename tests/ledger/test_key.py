"""The ledger's signing key: made once, whole, even by processes starting together."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from lienwatch.adapters.ledger_key import load_or_create_key
from lienwatch.ledger.entries import LedgerError
from lienwatch.ledger.heads import raw_public_key


def public_key_of(path: str) -> bytes:
    return raw_public_key(load_or_create_key(Path(path)).public_key())


def test_processes_starting_together_share_one_key(tmp_path):
    path = tmp_path / "keys" / "ledger.key"
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        keys = pool.map(public_key_of, [str(path)] * 12)
    assert len(set(keys)) == 1 and keys[0] == public_key_of(str(path))
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["ledger.key"]  # no drafts left


def test_a_file_that_is_not_an_ed25519_key_is_named(tmp_path):
    path = tmp_path / "ledger.key"
    path.write_text("not a key")
    with pytest.raises(LedgerError, match=r"ledger\.key_file: .* is not an unencrypted PEM key"):
        load_or_create_key(path)
