"""Mortgage registrations read back from the ledger's entries (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np

from lienwatch.domain.delinquency import LoanStatus
from lienwatch.ledger.collateral import Registration, pledged_loans, registrations
from lienwatch.ledger.entries import EntryKind, entry_body
from lienwatch.servicing.portfolio import STATUS_CODES, hold_until_released

AT = datetime(2026, 1, 1, tzinfo=UTC)
VIN = "LSVAU2180N2183294"


def entry(kind: EntryKind, **data: str) -> tuple[str, str]:
    return kind.value, entry_body(kind, subject=VIN, at=AT, by="sam", data=data).decode()


def test_a_registration_is_in_force_from_its_day_until_its_release():
    found = registrations([
        entry(EntryKind.COLLATERAL_REGISTERED, loan="L1", certificate="C1",
              registered_on="2026-01-10", plate="京A1", authority="x"),
        entry(EntryKind.COLLATERAL_RELEASED, released_on="2026-06-01", certificate="R1"),
        entry(EntryKind.COLLATERAL_REGISTERED, loan="L2", certificate="C2",
              registered_on="2026-07-01", plate="京A1", authority="x"),
    ])  # fmt: skip
    assert found == [Registration(VIN, "L1", "C1", date(2026, 1, 10), date(2026, 6, 1)),
                     Registration(VIN, "L2", "C2", date(2026, 7, 1))]  # fmt: skip
    assert pledged_loans(found, date(2026, 1, 9)) == set()
    assert pledged_loans(found, date(2026, 1, 10)) == {"L1"}
    assert pledged_loans(found, date(2026, 5, 31)) == {"L1"}
    assert pledged_loans(found, date(2026, 6, 1)) == set()
    assert pledged_loans(found, date(2027, 1, 1)) == {"L2"}


def test_a_release_without_a_registration_is_ignored():
    assert registrations([entry(EntryKind.COLLATERAL_RELEASED, released_on="2026-06-01",
                                certificate="R1")]) == []  # fmt: skip


def test_only_paid_loans_still_pledged_wait_for_the_release():
    status = np.array([STATUS_CODES.index(s) for s in (
        LoanStatus.CLOSED, LoanStatus.SETTLED, LoanStatus.CLOSED, LoanStatus.DELINQUENT,
        LoanStatus.REPOSSESSED)], dtype=np.int8)  # fmt: skip
    pledged = np.array([True, True, False, True, True])
    held = [STATUS_CODES[i] for i in hold_until_released(status, pledged)]
    assert held == [LoanStatus.RELEASE_PENDING, LoanStatus.RELEASE_PENDING, LoanStatus.CLOSED,
                    LoanStatus.DELINQUENT, LoanStatus.REPOSSESSED]  # fmt: skip
