"""Real HTTP receivers on loopback for tests of outbound channels (providers' clouds that
cannot run here, stood in for by a server that speaks their protocol)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lienwatch.adapters.senders import IDEMPOTENCY_HEADER


class SmsGateway:
    """A webhook SMS gateway on loopback that takes ``delay`` seconds per message and keeps
    the idempotency key of every request, in arrival order."""

    def __init__(self, delay: float, on_request: Callable[[int], None] | None = None) -> None:
        self.keys: list[str] = []
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                with gateway._lock:
                    gateway.keys.append(self.headers[IDEMPOTENCY_HEADER])
                    number = len(gateway.keys)
                if on_request is not None:
                    on_request(number)
                time.sleep(delay)
                payload = json.dumps({"id": f"gw-{number}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/sms"

    @contextmanager
    def running(self) -> Iterator[SmsGateway]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
