"""Reading the CSV files users hand to lienwatch: one way, with line numbers for error messages.

CSV files are UTF-8 (a byte-order mark is tolerated) with a header on line 1; every data row
comes with the line it started on, so a bad value can be reported as ``FILE:LINE``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path

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
