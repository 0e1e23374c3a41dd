"""Every ``lienwatch`` command, walked from the command tree (a new command is covered without
touching this file), run with ordinary mistakes: a database never migrated or missing, missing
and corrupt files, numbers and dates out of range, a naive time, a busy port, an unknown user.

Each run must end with at most one line on stderr and no traceback (an exception escaping
``main`` fails the test with its traceback). The commands run in this process through
``lienwatch.cli.main``, as the console script does, so the walk stays fast.
"""

from __future__ import annotations

import contextlib
import enum
import io
import shutil
import signal
import socket
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import typer.main

from lienwatch.cli import app, main
from lienwatch.config import command_line
from lienwatch.store import migrate
from lienwatch.store.db import make_engine

#: Commands that run until interrupted or do heavy work when their input is good: they get
#: only the mistakes that stop them before they start.
LONG_RUNNING = {"serve", "worker", "gateway", "followup run", "demo", "simulate-devices"}

#: A valid value for options whose name says more than their type.
VALUES = {
    "principal": "10000", "annual_rate": "0.1", "term": "12", "start": "2026-01-15",
    "as_of": "2026-11-30", "at": "2026-11-30T10:00:00+08:00",
    "since": "2026-11-01T00:00:00+08:00", "loan": "L000001", "route": "court_order",
    "profile": "cn", "tz": "Asia/Shanghai", "frames": "7e0002000001391234567800017e",
    "ident": "013912345678", "external_id": "P1", "username": "ann", "team": "east",
    "promise_date": "2026-12-05", "recovered_on": "2026-11-20", "incurred_on": "2026-11-20",
    "sold_on": "2026-11-25", "amount": "100.00", "value": "1000.00", "price": "1000.00",
    "cv": "2x1", "older_than": "180d",
}  # fmt: skip

#: Paths a command writes: a missing file there is no mistake.
OUTPUTS = {"out", "directory"}

#: Options naming a user: the "unknown user" mistake gives them a name nobody has.
USER_OPTIONS = {"by", "agent", "assignee"}


def _commands() -> Iterator[tuple[str, Any]]:
    def walk(command: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        if hasattr(command, "list_commands"):  # a group (the root loads its commands lazily)
            context = typer.Context(command)
            for name in command.list_commands(context):
                yield from walk(command.get_command(context, name), [*path, name])
        else:
            yield " ".join(path), command

    yield from walk(typer.main.get_command(app), [])


COMMANDS = dict(_commands())


def _annotation(param: Any) -> Any:
    return param.type_descriptor.annotation


def _valid(param: Any, files: dict[str, Path]) -> str:
    """A value the option accepts."""
    kind = _annotation(param)
    if param.name in VALUES:
        return VALUES[param.name]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return str(next(iter(kind)).value)
    if kind is Path:
        return str(files["payments"] if param.name == "payments" else files["positions"])
    if kind in (int, float):
        return "1"
    if kind is date:
        return "2026-11-30"
    if kind is datetime:
        return "2026-11-30T10:00:00+08:00"
    return "x"


def _arguments(command: Any, files: dict[str, Path], **override: str | None) -> list[str]:
    """Arguments for every required parameter (and the overridden ones); an override of None
    leaves the parameter out."""
    args: list[str] = []
    for param in command.params:
        if param.name in override:
            value = override[param.name]
        elif not param.required:
            continue
        elif getattr(param, "is_flag", False):
            args.append(param.opts[0])
            continue
        else:
            value = _valid(param, files)
        if value is None:
            continue
        if param.param_type_name == "argument":
            args.append(value)
        else:
            args.extend([param.opts[0], value])
    return args


def _numbers(param: Any, long: bool) -> list[str]:
    """Out-of-range values of a number option: past its declared bounds, and for commands that
    end quickly also a negative and a huge one; never a number at all."""
    numbers = ["abc"]
    if getattr(param, "min", None) is not None:
        numbers.append(str(param.min - 1))
    if getattr(param, "max", None) is not None:
        numbers.append(str(param.max + 1))
    if not long:
        numbers += ["-1", "99999999999999"]
    return numbers


def _mistakes(path: str, command: Any, files: dict[str, Path], dbs: dict[str, str]):
    """(label, root options, command arguments) for each mistake that applies to the command."""
    long = path in LONG_RUNNING
    base = _arguments(command, files)
    if path not in ("demo", "simulate-devices"):  # those two never open the database
        yield "old database", ["--db", dbs["old"]], base
    if not long:
        yield "missing database folder", ["--db", dbs["no folder"]], base
    for param in command.params:
        kind = _annotation(param)
        name = param.name

        def given(value: str, name: str = name) -> list[str]:
            return _arguments(command, files, **{name: value})

        if kind is Path and not long:
            for label in ("missing", "corrupt", "corrupt parquet", "folder"):
                said = "new" if label == "missing" and name in OUTPUTS else label
                yield f"{said} file for {name}", ["--db", dbs["old"]], given(str(files[label]))
        elif kind in (int, float):
            for number in _numbers(param, long):
                yield f"{name} {number}", ["--db", dbs["old"]], given(number)
        elif name in ("as_of", "start", "promise_date") or kind is date or name.endswith("_on"):
            for day in ("9999-12-31", "1900-01-01", "2026-02-30"):
                yield f"{name} {day}", ["--db", dbs["old"]], given(day)
        elif name in ("at", "since") or kind is datetime:
            for moment in ("2026-11-30T10:00:00", "9999-12-31T23:00:00-12:00", "tomorrow"):
                yield f"{name} {moment}", ["--db", dbs["old"]], given(moment)
        if name.endswith("port"):
            yield f"busy {name}", ["--db", dbs["old"]], given(str(files["busy port"]))
        if name in USER_OPTIONS and not long:
            yield f"unknown user for {name}", ["--db", dbs["fresh"]], given("nobody")


class _Timeout(Exception):
    pass


def _run(args: list[str], folder: Path) -> tuple[int, str, str]:
    """``lienwatch ARGS`` in ``folder``: (status, stdout, stderr); 60 s at most."""
    out, err = io.StringIO(), io.StringIO()

    def expire(signum: int, frame: Any) -> None:
        raise _Timeout(f"lienwatch {' '.join(args)} did not end within 60 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(60)
    stdin, sys.stdin = sys.stdin, io.StringIO("")  # nothing typed
    try:
        with contextlib.chdir(folder), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):  # fmt: skip
            try:
                main(args)
                status = 0
            except SystemExit as exit_:
                status = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.stdin = stdin
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def setting(tmp_path_factory) -> Iterator[tuple[dict[str, Path], dict[str, str], Path]]:
    folder = tmp_path_factory.mktemp("mistakes")
    (folder / "payments.csv").write_text("id,date,amount\nP1,2026-02-15,100.00\n")
    (folder / "positions.csv").write_text(
        "device_id,time,lat,lon\n013912345678,2026-11-30T10:00:00+08:00,31.2,121.4\n"
    )
    (folder / "corrupt.csv").write_bytes(b"\xff\xfe\x00garbage\x00\n\x01\x02")
    (folder / "corrupt.parquet").write_bytes(b"PAR1 not really parquet")
    (folder / "a-folder").mkdir()
    old = folder / "old.sqlite3"
    engine = make_engine(f"sqlite:///{old}")
    migrate.upgrade(engine, "0001")
    engine.dispose()
    fresh = folder / "fresh.sqlite3"
    engine = make_engine(f"sqlite:///{fresh}")
    migrate.upgrade(engine)
    engine.dispose()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    files = {
        "payments": folder / "payments.csv", "positions": folder / "positions.csv",
        "missing": folder / "missing.csv", "corrupt": folder / "corrupt.csv",
        "corrupt parquet": folder / "corrupt.parquet", "folder": folder / "a-folder",
        "busy port": busy.getsockname()[1],
    }  # fmt: skip
    dbs = {"old": str(old), "fresh": str(fresh), "no folder": str(folder / "no" / "x.sqlite3")}
    with busy:
        yield files, dbs, folder


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_command_answers_mistakes_in_one_line(path, setting, tmp_path):
    files, dbs, _ = setting
    command = COMMANDS[path]
    failures = []
    for n, (label, root, args) in enumerate(_mistakes(path, command, files, dbs)):
        work = tmp_path / f"{n}-{label.replace(' ', '-').replace('/', '-')}"
        work.mkdir()
        database = Path(root[1])
        if database.is_file():  # each run on its own copy: a mistake must not leak into the next
            shutil.copy(database, work / database.name)
            root = [root[0], f"sqlite:///{work / database.name}"]
        else:
            root = [root[0], f"sqlite:///{database}"]
        status, out, err = _run([*root, *path.split(), *args], work)
        lines = err.strip().splitlines()
        unexplained = status != 0 and not lines and not out.strip()  # a report may say why
        wording = label.startswith("missing file") and not err.rstrip().endswith(
            f"{files['missing']}: no such file")  # one wording for a missing file
        if "Traceback" in err or len(lines) > 1 or unexplained or wording:
            failures.append(f"{label}: lienwatch {' '.join([*path.split(), *args])} -> "
                            f"status {status}, stderr:\n{err}")  # fmt: skip
    assert not failures, "\n".join(failures)


def test_the_walk_sees_every_command_group():
    groups = {path.split()[0] for path in COMMANDS}
    assert {"db", "followup", "repossession", "user", "serve", "import"} <= groups
    assert len(COMMANDS) >= 39


def test_the_global_options_do_not_outlive_their_command(setting, tmp_path):
    _, dbs, _ = setting
    _run(["--db", f"sqlite:///{dbs['fresh']}", "user", "list"], tmp_path)
    assert command_line.database_url is None and command_line.config_file is None
