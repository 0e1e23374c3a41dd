"""Reading the CSV and Parquet files users hand to lienwatch: one way, with line numbers for
error messages.

CSV files are UTF-8 (a byte-order mark is tolerated) with a header on line 1; every data row
comes with the line it started on, so a bad value can be reported as ``FILE:LINE``. A file
that is missing or cannot be read is one line: ``FILE: no such file``, ``FILE: cannot read:
REASON``, ``FILE: not a readable Parquet file (REASON)``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lienwatch.errors import LienwatchError


class InputFileError(LienwatchError, ValueError):
    """An input file that cannot be read as expected; the message names file and line."""


def csv_rows(
    path: Path, *, required: Iterable[str] = ()
) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header of a CSV file and an iterator over its (line, row) pairs.

    Raises :class:`InputFileError` when the file cannot be opened or lacks a ``required``
    column (named, on line 1). The file is read lazily and closed when the rows are consumed.
    """
    require_file(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read: {exc.strerror}") from None
    reader = csv.DictReader(handle)
    header = list(reader.fieldnames or [])
    missing = [column for column in required if column not in header]
    if missing:
        handle.close()
        raise InputFileError(f"{path}:1: missing column(s) {', '.join(missing)}")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        with handle:
            for row in reader:
                yield reader.line_num, row

    return header, rows()


def require_file(path: Path, option: str | None = None) -> None:
    """Refuse a path that is not a readable file, in the one wording (``--zones:
    zones.geojson: no such file``; without ``option``, the file alone)."""
    where = f"{option}: {path}" if option else str(path)
    if not path.exists():
        raise InputFileError(f"{where}: no such file")
    if not path.is_file():
        raise InputFileError(f"{where}: cannot read: not a file")


def is_parquet(path: Path) -> bool:
    """A ``.parquet`` or ``.pq`` file (anything else is read as CSV)."""
    return path.suffix.lower() in {".parquet", ".pq"}


def parquet_frame(path: Path) -> Any:
    """A Parquet file as a polars DataFrame; a missing, unreadable or corrupt file is an
    :class:`InputFileError` naming it."""
    require_file(path)
    try:
        import polars
    except ModuleNotFoundError:
        raise InputFileError(
            f"{path}: reading Parquet needs polars (pip install 'lienwatch[parquet]')"
        ) from None
    try:
        return polars.read_parquet(path)
    except (OSError, polars.exceptions.PolarsError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise InputFileError(f"{path}: not a readable Parquet file ({reason})") from None
