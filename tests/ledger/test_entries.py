"""Canonical entry bodies: the types they accept and the ones they refuse by path."""

from __future__ import annotations

from collections import OrderedDict
from enum import IntEnum

import pytest

from lienwatch.ledger.entries import EntryKind, LedgerError, canonical


class Grade(IntEnum):
    A = 1


def test_plain_values_and_their_subclasses_have_one_canonical_form():
    value = {"b": [1, "x", None, True, (2, 3)], "a": {"kind": EntryKind.CONTRACT, "n": Grade.A}}
    assert canonical(value) == b'{"a":{"kind":"contract","n":1},"b":[1,"x",null,true,[2,3]]}'
    assert canonical(OrderedDict(value)) == canonical(value)


@pytest.mark.parametrize(("value", "where"), [
    ({"data": {"amount": 1.5}}, r"entry\.data\.amount: float"),
    ({"data": [1, {2: "x"}]}, r"entry\.data\[1\]: key 2 is not text"),
    ({"data": {"tags": {"a"}}}, r"entry\.data\.tags: set"),
    (b"bytes", r"entry: bytes"),
])  # fmt: skip
def test_other_types_are_refused_by_where_they_are(value, where):
    with pytest.raises(LedgerError, match=where):
        canonical(value)
