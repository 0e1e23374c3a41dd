"""The API on SQLite while another process (a CLI command beside ``lienwatch serve``) holds
the database's write lock: the requests that only read answer at once, as WAL allows; a
request that writes waits for the lock (docs/store.md, "Transactions on SQLite")."""

from __future__ import annotations

import sqlite3

from tests.api.support import login

READS = ("/api/v1/loans", "/api/v1/loans/L1/state", "/api/v1/queue/team", "/api/v1/alerts",
         "/api/v1/coverage", "/api/v1/repossessions", "/api/v1/auth/me")  # fmt: skip


def test_reads_answer_while_another_process_holds_the_write_lock(book):
    client, url = book
    bearer = login(client, "sam")  # a supervisor of team east, who may read all of these
    other = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE loans SET status = status")  # an uncommitted write
        answers = {path: client.get(path, headers=bearer).status_code for path in READS}
    finally:
        other.close()
    assert answers == dict.fromkeys(READS, 200)  # a waiting read would be 503 after 10 s
