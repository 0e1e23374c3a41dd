"""``lienwatch`` as the tests run it: long-running commands (serve, worker) as real
subprocesses, one-shot commands as children of a warm process (tests/zygote.py)."""

from __future__ import annotations

import json
import os
import queue
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lienwatch import clock


@dataclass
class Running:
    """A started command: its output lines as they come (read by threads, so a chatty
    process never blocks on a full pipe) and the line that said it was ready."""

    process: subprocess.Popen[str]
    ready_marker: str
    ready: str = ""
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)  # stderr; None: ended

    def wait_ready(self, timeout: float = 60) -> str:
        """The stderr line that said the command is ready; fails with what it printed if
        it ended or took too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            if self.ready_marker in line:
                self.ready = line
                return line
        self.process.kill()
        self.process.wait()
        raise AssertionError(f"{self.process.args} never got ready:\n" + "".join(self.stderr))

    def stop(self, timeout: float = 15) -> tuple[int, float]:
        """SIGTERM, as a service manager stops it; (exit status, seconds it took)."""
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        return code, time.monotonic() - began


def start(*args: str, cwd: Path, env: dict[str, str]) -> Running:
    """Start ``lienwatch ARGS`` and wait until it is ready (see :func:`launch`)."""
    running = launch(*args, cwd=cwd, env=env)
    running.wait_ready()
    return running


def environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``lienwatch`` process a test starts: this one's without its
    ``LIENWATCH_*`` variables, the test's clock as ``LIENWATCH_CLOCK``, then ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIENWATCH_")}
    return {**clean, "LIENWATCH_CLOCK": clock.now().isoformat(), **(env or {})}


def launch(*args: str, cwd: Path, env: dict[str, str], ready: str = "Ctrl-C") -> Running:
    """Start ``lienwatch ARGS`` in :func:`environment` with ``env``; it is ready once it
    prints a stderr line containing ``ready``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lienwatch", *args], cwd=cwd, env=environment(env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    running = Running(process, ready_marker=ready)
    assert process.stdout is not None and process.stderr is not None
    _drain(process.stdout, running.stdout, None)
    _drain(process.stderr, running.stderr, running.lines)
    return running


def _drain(stream: IO[str], into: list[str], lines: queue.Queue[str | None] | None) -> None:
    def read() -> None:
        for line in stream:
            into.append(line)
            if lines is not None:
                lines.put(line)
        if lines is not None:
            lines.put(None)

    threading.Thread(target=read, daemon=True).start()


ZYGOTE = Path(__file__).with_name("zygote.py")
#: Idle warm processes, one taken per command at a time (commands may run in threads at once).
_ZYGOTES: list[subprocess.Popen[bytes]] = []
_ZYGOTES_LOCK = threading.Lock()


def command(*args: str, cwd: Path | str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``python -m lienwatch ARGS`` in :func:`environment` with ``env`` to its end, as
    ``subprocess.run(..., capture_output=True, text=True)`` would give it, run as a child of
    a warm process that has the imports behind it (tests/zygote.py); a cold one when ``env``
    sets what the interpreter reads as it starts (``PYTHONPATH``, ``LD_PRELOAD``...)."""
    if any(name.startswith(("PYTHON", "LD_")) for name in env or {}):
        return subprocess.run([sys.executable, "-m", "lienwatch", *args], cwd=cwd,
                              env=environment(env), capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip
    with _ZYGOTES_LOCK:
        zygote = _ZYGOTES.pop() if _ZYGOTES else None
    zygote = zygote or subprocess.Popen(
        [sys.executable, str(ZYGOTE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        env=environment(), cwd=ZYGOTE.parent.parent, bufsize=0,  # select() sees every byte
    )  # fmt: skip
    assert zygote.stdin is not None and zygote.stdout is not None
    with tempfile.TemporaryDirectory() as outputs:
        out, err = Path(outputs, "stdout"), Path(outputs, "stderr")
        out.touch()
        err.touch()
        request = {"args": list(args), "cwd": str(cwd), "env": environment(env),
                   "stdout": str(out), "stderr": str(err)}  # fmt: skip
        zygote.stdin.write(json.dumps(request).encode() + b"\n")
        pid = json.loads(zygote.stdout.readline())["pid"]
        ended, _, _ = select.select([zygote.stdout], [], [], timeout)
        if not ended:
            os.kill(pid, signal.SIGKILL)
        status = json.loads(zygote.stdout.readline())["status"]
        stdout, stderr = _text(out.read_bytes()), _text(err.read_bytes())
    with _ZYGOTES_LOCK:
        _ZYGOTES.append(zygote)
    if not ended:
        raise subprocess.TimeoutExpired(["lienwatch", *args], timeout)
    return subprocess.CompletedProcess(
        [sys.executable, "-m", "lienwatch", *args], status, stdout, stderr)


def _text(output: bytes) -> str:
    """As ``text=True`` decodes a child's output (universal newlines)."""
    return output.decode().replace("\r\n", "\n").replace("\r", "\n")
