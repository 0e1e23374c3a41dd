"""Due follow-up steps drained by 1, 2 and 4 worker processes on one PostgreSQL database.

Builds a book of ``--steps`` delinquent loans whose automated call (the ``voice`` step) is due
now, as ``bench/followup.py`` does (COPY), once, and copies it for each run. The ``voice``
provider is a webhook to a local HTTP receiver (a thread of this process) that takes
``--delay-ms`` per request, as a provider's API does. Each run starts N processes that each
run the follow-up job (``lienwatch.jobs.tick_and_drain``: one ticks, all drain in batches of
``--batch``), timed from the moment all of them are ready; every key must reach the receiver
exactly once. The baseline in the same run is one worker; the ratio is its time over N's.

    python bench/followup_workers.py [--steps 5000] [--delay-ms 20] [--batch 500] [--workers 1,2,4]

PostgreSQL: ``LIENWATCH_BENCH_PG_URL`` (default postgres on 127.0.0.1:5432); the benchmark
creates and drops its own databases.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from followup import ADMIN_URL, NOW, populate
from lienwatch.adapters.senders import IDEMPOTENCY_HEADER
from lienwatch.config import FollowupSettings, Settings
from lienwatch.jobs import tick_and_drain
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory

# databases of its own: two runs at once must not drop each other's
BOOK = f"lienwatch_bench_workers_book_{os.getpid()}"
RUN = f"lienwatch_bench_workers_run_{os.getpid()}"
SECRET = "bench-secret-shared-with-the-receiver"


class Receiver:
    """A provider's HTTP API on loopback: ``delay`` seconds per request, keys counted."""

    def __init__(self, delay: float) -> None:
        self.keys: Counter[str] = Counter()
        lock = threading.Lock()
        keys = self.keys

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a provider's API would
            disable_nagle_algorithm = True  # headers and body leave at once, no 40 ms stall

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                with lock:
                    keys[self.headers[IDEMPOTENCY_HEADER]] += 1
                    number = sum(keys.values())
                payload = json.dumps({"id": f"r-{number}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/voice"

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def worker(database_url: str, receiver_url: str, batch: int) -> None:
    """One worker process: ready, wait for ``go`` on stdin, run the job once, print its
    summary as one JSON line."""
    voice = {"provider": "webhook", "url": receiver_url, "secret": SECRET}
    settings = Settings(
        database_url=database_url,
        followup=FollowupSettings(step_batch=batch, providers={"voice": voice}),
    )
    engine = make_engine(database_url)
    factory = session_factory(engine)
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    summary = tick_and_drain(factory, settings, catalogue=ProductCatalogue(), at=NOW)
    print(json.dumps({"seconds": time.perf_counter() - started, **summary}), flush=True)
    engine.dispose()


def drain(url: str, receiver: Receiver, workers: int, batch: int) -> tuple[float, list[dict]]:
    """Start ``workers`` processes on ``url``; the seconds from go to the last one's summary."""
    command = [sys.executable, __file__, "--worker", url, receiver.url, str(batch)]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
    procs = [subprocess.Popen(command, **pipes) for _ in range(workers)]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    summaries = [json.loads(proc.communicate()[0]) for proc in procs]
    elapsed = time.perf_counter() - started
    if any(proc.returncode for proc in procs):
        raise SystemExit(f"a worker failed: {[proc.returncode for proc in procs]}")
    return elapsed, summaries


def recreate(admin: Engine, name: str, template: str | None = None) -> str:
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        copy_of = f' TEMPLATE "{template}"' if template else ""
        connection.execute(text(f'CREATE DATABASE "{name}"{copy_of}'))
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--delay-ms", type=float, default=20.0, help="receiver time per request")
    parser.add_argument("--batch", type=int, default=500, help="[followup] step_batch")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, the first the baseline")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    results: list[tuple[int, float, list[dict]]] = []
    try:
        book = make_engine(recreate(admin, BOOK))
        migrate.upgrade(book)
        populate(book, args.steps, 1.0, args.seed)  # every automated call due now
        book.dispose()
        for workers in counts:
            url = recreate(admin, RUN, template=BOOK)
            with Receiver(args.delay_ms / 1000).running() as receiver:
                elapsed, summaries = drain(url, receiver, workers, args.batch)
            sent = receiver.keys
            assert len(sent) == args.steps and set(sent.values()) == {1}, "a step ran twice"
            assert sum(s["executed"] for s in summaries) == args.steps
            results.append((workers, elapsed, summaries))
    finally:
        with admin.connect() as connection:
            for name in (RUN, BOOK):
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(
        f"{args.steps:,} due automated calls, webhook receiver {args.delay_ms:g} ms per request, "
        f"batches of {args.batch}"
    )
    base = results[0][1]
    for workers, elapsed, summaries in results:
        shares = ", ".join(f"{s['executed']:,}" for s in summaries)
        print(
            f"{workers} worker(s): {elapsed:.2f} s, {args.steps / elapsed:,.0f} steps/s "
            f"(steps per worker: {shares}; batches: {sum(s['batches'] for s in summaries)}); "
            f"ratio {results[0][0]} / {workers} workers: {base / elapsed:.2f}x"
        )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
