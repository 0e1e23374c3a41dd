"""A warm ``lienwatch`` for the suite's one-shot commands (tests/processes.py: ``command``).

Every ``lienwatch`` a test runs would pay the same second of CPU for the interpreter, the
imports and SQLAlchemy's mapper configuration before doing anything of its own: the suite runs
a few hundred commands, in three suites in CI. This process pays it once and forks a child per
command: the child is a new process with the test's working directory, environment, stdout and
stderr files and arguments, which runs ``lienwatch.cli.main`` and exits as ``python -m
lienwatch`` would (atexit handlers, threads joined, the exit status of ``SystemExit`` or 1 with
the traceback). Only what reads no environment and no clock is loaded here; the command
modules, the settings and the clock load in the child, as in a cold process.

Protocol, one JSON line each way on stdin/stdout: ``{"args", "cwd", "env", "stdout",
"stderr"}`` (the two output paths) → ``{"pid"}`` at once, then ``{"status"}`` (as
``subprocess``'s returncode: negative for a signal) when the child has ended.
"""

from __future__ import annotations

import json
import os
import sys


def _preload() -> None:
    import sqlalchemy.orm

    import lienwatch.cli
    import lienwatch.store.migrate
    import lienwatch.store.repositories
    import lienwatch.store.tables  # noqa: F401

    sqlalchemy.orm.configure_mappers()


def _serve() -> dict:
    """Answer requests until one is to be run in this process: return it in the child."""
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)  # nothing of this process's may reach a command's stdout
    while line := requests.readline():
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            requests.close()
            replies.close()
            return request
        replies.write(json.dumps({"pid": pid}).encode() + b"\n")
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"status": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
    sys.exit(0)


def _become(request: dict) -> None:
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        out = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.dup2(out, fd)
        os.close(out)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["lienwatch", *request["args"]]


if __name__ == "__main__":
    _preload()
    _become(_serve())
    from lienwatch.cli import main

    main(sys.argv[1:])
