"""One CLI convention (docs/cli.md), checked on every command walked from the command tree, so a
new command follows it or fails here: results with --json, --at an ISO 8601 time with an offset
and --as-of a business date refused the same way everywhere, the acting user as --by, global
--db and --config."""

from __future__ import annotations

from pathlib import Path

import pytest

from lienwatch.commands.options import parse_at, parse_day
from tests.test_cli_mistakes import COMMANDS, _arguments, _run

#: Processes that run until interrupted: they report on stderr (and the worker one JSON line
#: per job run, a log), they print no result.
PROCESSES = {"serve", "worker", "gateway"}


def _options(command) -> dict[str, object]:
    return {opt: param for param in command.params for opt in getattr(param, "opts", [])
            if opt.startswith("--")}  # fmt: skip


def _parser(param) -> object:
    return param.type_descriptor.parameter_info.parser


@pytest.mark.parametrize("path", sorted(set(COMMANDS) - PROCESSES))
def test_every_command_that_prints_a_result_takes_json(path, tmp_path):
    options = _options(COMMANDS[path])
    assert "--json" in options, f"lienwatch {path} has no --json"
    status, out, _ = _run([*path.split(), "--help"], tmp_path)
    assert status == 0 and "--json" in out


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_at_and_as_of_mean_the_same_everywhere(path, tmp_path):
    command = COMMANDS[path]
    options = _options(command)
    for option, parser in (("--at", parse_at), ("--since", parse_at), ("--as-of", parse_day)):
        if option in options:
            assert _parser(options[option]) is parser, f"lienwatch {path} {option}"
    files = {"payments": tmp_path / "p.csv", "positions": tmp_path / "p.csv"}
    for option, bad, message in (
        ("at", "2026-03-01T09:00:00", "--at: '2026-03-01T09:00:00' has no UTC offset; add one, "
         "e.g. 2026-03-01T09:00:00+08:00"),
        ("as_of", "2026-03-01T09:00:00+08:00",
         "--as-of: '2026-03-01T09:00:00+08:00' is not a date YYYY-MM-DD"),
    ):  # fmt: skip
        if f"--{option.replace('_', '-')}" not in options:
            continue
        status, _, err = _run([*path.split(), *_arguments(command, files, **{option: bad})],
                              tmp_path)  # fmt: skip
        assert (status, err) == (2, f"lienwatch: error: {message}\n"), path
    assert not list(tmp_path.iterdir())  # refused before anything was opened


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_the_acting_user_is_by(path):
    options = _options(COMMANDS[path])
    for alias in ("--agent", "--user", "--operator", "--supervisor"):
        if alias in options:
            assert "--by" in options[alias].opts, f"lienwatch {path} {alias} without --by"


def test_global_database_and_config_options(tmp_path):
    status, out, _ = _run(["--help"], tmp_path)
    assert status == 0 and "--db" in out and "--config" in out


def test_docs_cli_lists_every_command():
    page = (Path(__file__).parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")
    assert [path for path in sorted(COMMANDS) if f"| `lienwatch {path}` |" not in page] == []
