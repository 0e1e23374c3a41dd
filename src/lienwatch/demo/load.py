"""Load a simulated portfolio into the store the way a lender's data would arrive: the book
through `lienwatch import` (validated, from the CSV files the simulator wrote) and the GPS
fixes through the bulk position loader, in a worker process while the demo goes on."""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from lienwatch.domain.positions import PositionColumns
from lienwatch.services.book_import import import_book
from lienwatch.store.repositories import (
    adopt_staged_positions,
    positions_schema,
    stage_positions,
)
from lienwatch.store.tables import Device

BOOK_FILES = ("borrowers", "vehicles", "devices", "loans", "payments")
STAGING_FILE = "positions-staging.sqlite3"


def load_book(session: Session, files: Mapping[str, Path], *, at: datetime) -> dict[str, int]:
    """Import the book files (recorded in the ledger at ``at``); any rejected row is a bug in
    the simulator, so it raises."""
    report = import_book(session, {kind: files[kind] for kind in BOOK_FILES}, at=at)
    return report.imported


class StagedFixes:
    """The bulk load of the simulated fixes, made in a worker process while the demo goes on
    with what does not read positions: the worker stages them into a scratch SQLite file
    beside the database (:func:`~lienwatch.store.repositories.stage_positions`) and
    :meth:`adopt` moves them into the store, which must have no positions yet."""

    def __init__(self, session: Session, fixes: PositionColumns, directory: Path, *,
                 skip: np.ndarray | None = None) -> None:  # fmt: skip
        """Start staging ``fixes``, except those ``skip`` marks, keyed by the devices the
        store has (the book must be committed)."""
        device_key = dict(session.execute(select(Device.ident, Device.id)).all())
        ids = np.fromiter(map(device_key.__getitem__, fixes.device_id.tolist()), dtype=np.int64,
                          count=len(fixes))  # fmt: skip
        keep = np.flatnonzero(~skip) if skip is not None else np.arange(len(fixes))
        columns = replace(fixes.take(keep), device_id=ids[keep])  # the store's device keys
        self.path = directory / STAGING_FILE
        self.path.unlink(missing_ok=True)  # left by a run that failed before adopting
        self.worker = multiprocessing.get_context("fork").Process(
            target=stage_positions, args=(self.path, positions_schema(session), columns),
            name="stage-positions", daemon=True)  # fmt: skip
        self.worker.start()

    def adopt(self, engine: Engine) -> int:
        """Wait for the worker, move its fixes into the store; return how many were stored."""
        try:
            self.worker.join()
            if self.worker.exitcode != 0:
                raise RuntimeError(f"positions: staging them failed (exit code "
                                   f"{self.worker.exitcode}), see the error above")  # fmt: skip
            return adopt_staged_positions(engine, [self.path])
        finally:
            self.path.unlink(missing_ok=True)
