"""A NATS server of the test's own (JetStream, a store folder, a loopback port) that a test
may stop and start again without disturbing the shared one on 4222."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI


class NatsServer:
    """``nats-server -js`` on ``port`` keeping its streams in ``store``."""

    def __init__(self, binary: str, port: int, store: Path) -> None:
        self.binary, self.port, self.store = binary, port, store
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        self.process = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "nats-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop it as a service manager does (SIGTERM) and wait for the end."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A started :class:`NatsServer`; mandatory with CI=true, else skipped without the binary."""
    binary = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
    )
    if binary is None:
        if IN_CI:
            pytest.fail("CI=true but nats-server is not installed")
        pytest.skip("nats-server is not installed")
    server = NatsServer(binary, free_port(), tmp_path / "nats")
    server.start()
    yield server
    server.stop()
