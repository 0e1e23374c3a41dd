"""The ledger at volume: appending inside the application's transactions, sealing, verifying
the whole log and proving one entry, each against a plain baseline in the same run.

- append: ``record()`` of case-action entries (canonical JSON, one ORM insert each) in
  transactions of ``--batch`` entries; baseline: the same bodies inserted with a bare
  ``executemany`` into a scratch table of the same shape (the floor of any append).
- seal: numbering every pending entry, storing its subtree hashes and signing the head.
- verify: ``LedgerService.verify()`` over the whole log (read, re-hash, rebuild the tree,
  check the head); baseline: SHA-256 of the same bodies in memory, no database.
- proof: ``prove()`` of random entries; baseline: reading one entry by its index.

    python bench/ledger.py [--entries 200000] [--backend sqlite|postgresql]
    # issue targets: append ≥ 20,000/s; verify 1,000,000 in < 10 s; a proof < 10 ms

PostgreSQL: ``LIENWATCH_BENCH_PG_URL`` (default postgres on 127.0.0.1:5432); the benchmark
creates and drops its own database.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from lienwatch.ledger.entries import EntryKind
from lienwatch.services.ledger import LedgerService, record
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import LedgerEntry

ADMIN_URL = os.environ.get(
    "LIENWATCH_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# a database of its own: two runs at once must not drop each other's
DATABASE = f"lienwatch_bench_ledger_{os.getpid()}"
AT = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)


def database(backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'ledger.sqlite3'}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {DATABASE}"))
        connection.execute(text(f"CREATE DATABASE {DATABASE}"))
    admin.dispose()
    return make_url(ADMIN_URL).set(database=DATABASE).render_as_string(hide_password=False)


def act(i: int) -> dict:
    return {"case": i // 3, "action": "call", "outcome": "no_answer", "note": None,
            "details": {"trigger": i, "step": i % 4, "task": i}, "key": f"task:{i}"}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--proofs", type=int, default=500)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = database(args.backend, Path(folder))
        engine = make_engine(url)
        migrate.upgrade(engine)
        factory = session_factory(engine)
        key = Ed25519PrivateKey.generate()
        figures = run(engine, factory, key, args)
        engine.dispose()
    print(json.dumps(figures, indent=2))


def run(engine, factory, key, args) -> dict:
    n, batch = args.entries, args.batch
    started = time.perf_counter()
    for start in range(0, n, batch):
        with transaction(factory) as session:
            for i in range(start, min(start + batch, n)):
                record(session, EntryKind.CASE_ACTION, subject=f"L{i % 50_000:06d}",
                       at=AT + timedelta(seconds=i), by="ann", data=act(i))  # fmt: skip
    append_s = time.perf_counter() - started
    with transaction(factory) as session:
        bodies = [b for (b,) in session.execute(text("SELECT body FROM ledger_entries"))]
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE scratch (id INTEGER PRIMARY KEY, kind TEXT, "
                                "subject TEXT, body TEXT, recorded_at TEXT)"))  # fmt: skip
    started = time.perf_counter()
    for start in range(0, n, batch):
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO scratch (kind, subject, body, recorded_at) "
                     "VALUES ('case_action', :s, :b, :t)"),
                [{"s": f"L{i % 50_000:06d}", "b": bodies[i], "t": AT.isoformat()}
                 for i in range(start, min(start + batch, n))],
            )  # fmt: skip
    plain_append_s = time.perf_counter() - started

    started = time.perf_counter()
    with transaction(factory) as session:
        LedgerService(session, key=key).seal(at=AT + timedelta(days=1))
    seal_s = time.perf_counter() - started

    started = time.perf_counter()
    with transaction(factory) as session:
        report = LedgerService(session, public_key=key.public_key()).verify()
    verify_s = time.perf_counter() - started
    assert report.ok and report.entries == n, report.problems[:3]
    started = time.perf_counter()
    for body in bodies:
        hashlib.sha256(b"\x00" + body.encode()).digest()
    plain_hash_s = time.perf_counter() - started

    rng = random.Random(5)
    picks = [rng.randrange(n) for _ in range(args.proofs)]
    with transaction(factory) as session:
        ledger = LedgerService(session, public_key=key.public_key())
        started = time.perf_counter()
        for index in picks:
            ledger.prove(leaf_index=index)
        proof_s = (time.perf_counter() - started) / len(picks)
        started = time.perf_counter()
        for index in picks:
            session.scalar(session.query(LedgerEntry.body)
                           .filter(LedgerEntry.leaf_index == index).statement)  # fmt: skip
        lookup_s = (time.perf_counter() - started) / len(picks)

    return {
        "backend": args.backend, "entries": n,
        "append_per_s": round(n / append_s), "plain_insert_per_s": round(n / plain_append_s),
        "append_ratio": round(append_s / plain_append_s, 2),
        "seal_s": round(seal_s, 2),
        "verify_s": round(verify_s, 2), "verify_per_s": round(n / verify_s),
        "hash_only_s": round(plain_hash_s, 2),
        "verify_ratio": round(verify_s / plain_hash_s, 1),
        "proof_ms": round(proof_s * 1000, 2), "lookup_ms": round(lookup_s * 1000, 3),
        "proof_ratio": round(proof_s / lookup_s, 1),
    }  # fmt: skip


if __name__ == "__main__":
    main()
