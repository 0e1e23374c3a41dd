"""The one paging rule of every list (API and console): a full page hands out the cursor of
its last row, a short one none, and the cursor reads back as that row's key."""

from __future__ import annotations

from datetime import UTC, date, datetime

from lienwatch.api.context import decode_cursor, decode_time_cursor, next_cursor, time_key


def test_a_full_page_hands_out_its_last_rows_key_and_a_short_one_none():
    rows = [{"id": 9}, {"id": 7}]
    assert decode_cursor(next_cursor(rows, 2, lambda r: [r["id"]]), 1) == [7]
    assert next_cursor(rows, 3, lambda r: [r["id"]]) is None
    assert next_cursor([], 3, lambda r: [r["id"]]) is None


def test_a_time_key_reads_back_as_its_time_and_row():
    at = datetime(2026, 12, 1, 2, tzinfo=UTC)
    cursor = next_cursor([(at, 4)], 1, lambda r: time_key(*r))
    assert decode_time_cursor(cursor) == (at, 4)
    day = next_cursor([(date(2026, 12, 1), "BANK-1")], 1, lambda r: time_key(*r))
    assert decode_time_cursor(day, day=True, row=str) == (date(2026, 12, 1), "BANK-1")
