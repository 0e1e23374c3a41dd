"""Load a simulated portfolio into the store the way a lender's data would arrive: the book
through `lienwatch import` (validated, from the CSV files the simulator wrote) and the GPS
fixes through the bulk position loader."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.domain.positions import PositionColumns
from lienwatch.services.book_import import import_book
from lienwatch.store.repositories import load_positions
from lienwatch.store.tables import Device

Progress = Callable[[str, int, int], None]
BOOK_FILES = ("borrowers", "vehicles", "devices", "loans", "payments")


def load_book(session: Session, files: Mapping[str, Path], *, at: datetime) -> dict[str, int]:
    """Import the book files (recorded in the ledger at ``at``); any rejected row is a bug in
    the simulator, so it raises."""
    report = import_book(session, {kind: files[kind] for kind in BOOK_FILES}, at=at)
    return report.imported


def load_fixes(
    session: Session,
    fixes: PositionColumns,
    *,
    skip: np.ndarray | None = None,
    progress: Progress,
    chunk: int = 250_000,
) -> int:
    """Bulk-store the simulated fixes, except those ``skip`` marks; return how many were
    stored."""
    device_key = dict(session.execute(select(Device.ident, Device.id)).all())
    ids = np.fromiter(map(device_key.__getitem__, fixes.device_id.tolist()), dtype=np.int64,
                      count=len(fixes))  # fmt: skip
    keep = np.flatnonzero(~skip) if skip is not None else np.arange(len(fixes))
    stored = 0
    for start in range(0, len(keep), chunk):
        part = keep[start : start + chunk]
        columns = replace(fixes.take(part), device_id=ids[part])  # the store's device keys
        stored += load_positions(session, columns, chunk=chunk)
        progress("load positions", min(start + chunk, len(keep)), len(keep))
    return stored
