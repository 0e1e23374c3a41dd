"""Advisory locks: one worker at a time runs a job on PostgreSQL, the others skip it.

Row-level claims (``FOR UPDATE SKIP LOCKED``, ``FOR KEY SHARE``) stay in the queries that
take them; these are the locks of whole jobs, held until the transaction ends.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

SCHEDULER_LOCK = 0x6C69656E  # the follow-up scheduler's tick ("lien")
NIGHTLY_LOCK = 0x6C776E69  # the nightly servicing run ("lwni")
LEDGER_LOCK = 0x6C776C67  # sealing the ledger's pending entries ("lwlg")


def try_advisory_lock(session: Session, key: int) -> bool:
    """Take the transaction-level advisory lock ``key`` without waiting; False when another
    transaction holds it. SQLite has a single writer and needs none: always True there."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(key))))
