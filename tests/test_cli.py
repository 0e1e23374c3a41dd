"""The `lienwatch` command as a user runs it: a real subprocess, real exit codes and streams."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

import lienwatch
from lienwatch import cli
from lienwatch.store import migrate
from tests.processes import command as run  # the other tests' `run` too
from tests.processes import environment


def test_version(tmp_path):
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"lienwatch {lienwatch.__version__}"


def test_help_lists_commands(tmp_path):
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("db", "demo", "decode"):
        assert command in result.stdout


def test_the_command_table_is_what_the_modules_register():
    registered = {name: module for module in set(cli.COMMANDS.values())
                  for name in cli.registered(module).commands}  # fmt: skip
    assert registered == cli.COMMANDS


def test_the_root_command_imports_no_command_module(tmp_path):
    """`lienwatch --version`, `--help` of a light command and usage errors start fast: the
    command modules, and the store, numpy and httpx with them, load when their command runs."""
    heavy = ("sqlalchemy", "numpy", "httpx", "alembic", "lienwatch.commands.common")
    probe = (
        "import sys\nfrom lienwatch.cli import main\ntry:\n    main(sys.argv[1:])\n"
        f"except SystemExit:\n    print(sorted(set({heavy!r}) & set(sys.modules)))\n"
    )
    for args in (["--version"], ["decode", "--help"], ["no-such-command"]):
        result = subprocess.run([sys.executable, "-c", probe, *args], cwd=tmp_path,
                                env=environment(), capture_output=True, text=True,
                                timeout=120)  # fmt: skip
        assert result.stdout.splitlines()[-1] == "[]", (args, result.stdout, result.stderr)


def test_db_upgrade_creates_the_default_sqlite_file(tmp_path):
    result = run("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "lienwatch.sqlite3").is_file()
    head = migrate.head_revision()
    assert f"revision {head}" in result.stdout
    assert f"current {head}, head {head}" in run("db", "current", cwd=tmp_path).stdout


def test_bad_config_is_one_line_on_stderr(tmp_path):
    (tmp_path / "lienwatch.toml").write_text("[demo]\nloans = 0\n")
    result = run("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("lienwatch: error: config: demo.loans:")
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_line(tmp_path):
    url = "postgresql://postgres@127.0.0.1:1/nothing"
    result = run("db", "upgrade", cwd=tmp_path, env={"LIENWATCH_DATABASE_URL": url})
    assert result.returncode == 1
    assert result.stderr.startswith("lienwatch: error: cannot connect to")
    assert result.stderr.count("\n") == 1


def test_unknown_command_is_a_usage_error(tmp_path):
    result = run("frobnicate", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_the_first_command_creates_a_new_sqlite_database_and_an_old_one_is_refused(tmp_path):
    tick = run("followup", "tick", "--at", "2026-02-17T08:30:00+08:00", "--json", cwd=tmp_path)
    assert tick.returncode == 0, tick.stderr
    assert tick.stderr.strip() == "created a new database lienwatch.sqlite3 at revision " + str(
        migrate.head_revision())
    assert json.loads(tick.stdout)["raised"] == {}
    old = tmp_path / "old"
    old.mkdir()
    assert run("db", "upgrade", "0001", cwd=old).returncode == 0
    refused = (
        ("servicing", "run", "--as-of", "2026-02-16"), ("followup", "tick"),
        ("followup", "coverage"), ("followup", "adopt", "--dry-run"),
        ("payment", "reverse", "P1", "--reason", "bounced"),
        ("import", "--loans", str(old / "loans.csv")),
    )  # fmt: skip
    (old / "loans.csv").write_text("ref\n")
    for command in refused:
        result = run(*command, cwd=old)
        assert result.returncode == 1, command
        assert result.stderr.strip() == (
            "lienwatch: error: database at revision 0001, this lienwatch needs "
            f"{migrate.head_revision()}: run `lienwatch db upgrade`"), command


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (("db", "upgrade", "9999"), {}, "revision '9999': Can't locate revision identified by "
         "'9999' (the newest is {head})"),
        (("db", "current"), {"LIENWATCH_DATABASE_URL": "sqlite:///missing.sqlite3"},
         "no database at missing.sqlite3 (`lienwatch db upgrade` creates it)"),
        (("servicing", "run"), {"LIENWATCH_DATABASE_URL": "sqlite:///notes.txt"},
         "cannot connect to sqlite:///notes.txt: file is not a database"),
        (("servicing", "run", "--as-of", "2099-01-01"), {},
         "--as-of: 2099-01-01 has not come yet (today is 2026-12-01 in Asia/Shanghai); a day "
         "is run once it is over"),
        (("followup", "coverage"), {"LIENWATCH_FOLLOWUP__STRATEGY": "eu"},
         "followup.strategy: 'eu' is neither a shipped strategy (cn, us) nor a readable file "
         "(No such file or directory)"),
    ],
)  # fmt: skip
def test_ordinary_mistakes_get_one_line_and_create_nothing(tmp_path, args, env, line):
    (tmp_path / "notes.txt").write_text("not a database\n")
    (tmp_path / "payments.csv").write_text("id,date,amount\nP1,2026-02-15,100.00\n")
    result = run(*args, cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == "lienwatch: error: " + line.format(
        head=migrate.head_revision())
    assert not (tmp_path / "missing.sqlite3").exists()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("loan", "state", "--principal", "10000", "--annual-rate", "0.1", "--term", "12",
          "--method", "annuity", "--start", "2026-01-15", "--payments", "payments.csv",
          "--as-of", "9999-12-31"),
         "--as-of: 9999-12-31 is out of range (1970-01-01 to 2199-12-31)"),
        (("followup", "tick", "--at", "2026-02-17T08:30:00"),
         "--at: '2026-02-17T08:30:00' has no UTC offset; add one, e.g. "
         "2026-02-17T08:30:00+08:00"),
        (("payment", "reverse", "P1", "--reason", "x", "--at", "2026-02-17T08:30:00"),
         "--at: '2026-02-17T08:30:00' has no UTC offset; add one, e.g. "
         "2026-02-17T08:30:00+08:00"),
        (("gateway", "--jt808-port", "70000"),
         "--jt808-port: Input should be less than or equal to 65535"),
        (("schedule", "--principal", "1"),
         "Missing option '--annual-rate' (see `lienwatch schedule --help`)"),
    ],
)  # fmt: skip
def test_a_value_refused_at_the_option_is_one_line_with_status_2(tmp_path, args, line):
    result = run(*args, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, f"lienwatch: error: {line}\n")
    assert not list(tmp_path.iterdir())  # nothing created


def test_a_busy_port_stops_serve_before_any_job_and_names_the_option(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for args, option in ((("serve", "--jt808-port", "0", "--gt06-port", "0", "--http-port",
                               str(port)), "--http-port"),
                             (("serve", "--jt808-port", str(port)), "--jt808-port"),
                             (("worker", "--http-port", str(port)), "--http-port"),
                             (("gateway", "--gt06-port", str(port)), "--gt06-port")):  # fmt: skip
            result = run(*args, cwd=tmp_path)
            assert result.returncode == 1, args
            assert result.stderr == (
                f"lienwatch: error: {option}: port {port} on 127.0.0.1 is in use by another "
                f"process; stop it or choose another port ({option} 0 picks a free one)\n")
            assert not list(tmp_path.iterdir()), args  # not even the database was created


def test_global_db_and_config_options(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    url = f"sqlite:///{tmp_path / 'book.sqlite3'}"
    assert run("--db", url, "db", "upgrade", cwd=tmp_path / "elsewhere").returncode == 0
    assert (tmp_path / "book.sqlite3").is_file()
    assert not list((tmp_path / "elsewhere").iterdir())
    config = tmp_path / "other.toml"
    config.write_text("[demo]\nloans = 0\n")
    bad = run("--config", str(config), "--db", url, "db", "current", cwd=tmp_path / "elsewhere")
    assert bad.returncode == 1 and bad.stderr.startswith("lienwatch: error: config: demo.loans:")
    wrong = run("--db", "mysql://x", "db", "current", cwd=tmp_path)
    assert wrong.stderr == ("lienwatch: error: config: database_url: unsupported database "
                            "'mysql'; use sqlite or postgresql (from option --db)\n")
