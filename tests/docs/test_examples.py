"""The docs keep themselves true: the shell examples of README.md and docs/*.md marked
``<!-- doctest -->`` (an empty folder) or ``<!-- doctest: demo -->`` (a folder holding the
output of a small demo, ``lienwatch demo --loans 200 --days 30``, in ``./lienwatch-demo``: its
database and its book as CSV files) just before their fence are run, and their output is
compared with the page.

In a marked block a line starting ``$ `` is a command (continued by lines ending in ``\\``, and
by a here-document's lines up to its end word); the lines after it, up to the next command, are
what it prints (stdout, then stderr) — no lines means the output is not compared. A command
whose shown output has a ``lienwatch: error:`` line must fail, one ending in the comment
``# exits N`` must exit with status N, any other must succeed. The
blocks of one page and one kind share their folder, in page order, as a reader typing them
would. Mark only what is deterministic: the clock is the suite's (TEST_NOW), the demo's seed
fixed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import command as lienwatch
from tests.processes import environment

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!-- doctest(?::\s*(\w+))?\s*-->$")
HEREDOC = re.compile(r"<<-?\s*'?\"?(\w+)'?\"?")


@dataclass
class Command:
    line: int
    text: str
    output: list[str]


def _blocks(page: Path) -> list[tuple[str, list[Command]]]:
    """(kind, commands) of every marked block of ``page``."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        marker = MARKER.match(lines[i].strip())
        if not marker:
            i += 1
            continue
        assert lines[i + 1].startswith("```"), f"{page.name}:{i + 1}: a marker needs a fence"
        end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
        blocks.append((marker.group(1) or "empty", _commands(lines[i + 2:end], i + 3)))
        i = end + 1
    return blocks


def _commands(body: list[str], first_line: int) -> list[Command]:
    commands: list[Command] = []
    k = 0
    while k < len(body):
        line = body[k]
        if not line.startswith("$ "):
            assert commands, f"line {first_line + k}: output before any command"
            commands[-1].output.append(line.rstrip())
            k += 1
            continue
        text, start = line[2:], first_line + k
        while text.endswith("\\"):  # bash joins the lines
            k += 1
            text += "\n" + body[k]
        heredoc = HEREDOC.search(text)
        if heredoc:
            k += 1
            while body[k].strip() != heredoc.group(1):
                text += "\n" + body[k]
                k += 1
            text += "\n" + body[k]
        commands.append(Command(start, text, []))
        k += 1
    return commands


EXAMPLES = [
    pytest.param(page, kind, blocks, id=f"{page.name}-{kind}")
    for page in PAGES
    for kind in sorted({k for k, _ in _blocks(page)})
    for blocks in [[commands for k, commands in _blocks(page) if k == kind]]
]


@pytest.fixture(scope="session")
def demo_folder(small_demo) -> Path:
    """A small demo, built once per session (each example works on a copy)."""
    return small_demo[0]


#: What makes an example bash's to run rather than a plain ``lienwatch ARGS``.
_SHELL = set("|&;<>()$`*?[]~\\\n=")


def _run(command: Command, folder: Path) -> subprocess.CompletedProcess[str]:
    words = shlex.split(command.text, comments=True) if not _SHELL & set(command.text) else []
    if words[:1] == ["lienwatch"]:  # started warm, as the other tests' commands are
        return lienwatch(*words[1:], cwd=folder, env={"COLUMNS": "100"}, timeout=300)
    env = environment()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "100"
    return subprocess.run(["bash", "-c", command.text], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.parametrize(("page", "kind", "blocks"), EXAMPLES)
def test_marked_examples_print_what_the_page_shows(page, kind, blocks, tmp_path, request):
    folder = tmp_path
    if kind == "demo":
        demo = request.getfixturevalue("demo_folder")
        shutil.copytree(demo / "lienwatch-demo", folder / "lienwatch-demo")
    else:
        assert kind == "empty", f"{page.name}: unknown doctest kind {kind!r}"
    for commands in blocks:
        for command in commands:
            result = _run(command, folder)
            shown = [line for line in command.output if line.strip()]
            printed = [line.rstrip() for line in (result.stdout + result.stderr).splitlines()
                       if line.strip()]  # fmt: skip
            where = f"{page.name}:{command.line}: $ {command.text}"
            said = re.search(r"#\s*exits (\d+)\s*$", command.text)
            if said:
                assert result.returncode == int(said.group(1)), f"{where}\n{result.stderr}"
            else:
                fails = any(line.startswith("lienwatch: error:") for line in shown)
                assert (result.returncode != 0) == fails, f"{where}\n{result.stdout}{result.stderr}"
            if shown:
                assert printed == shown, where


def test_the_runner_reads_commands_outputs_and_heredocs(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("<!-- doctest -->\n```\n$ cat > a.csv <<'CSV'\nx\nCSV\n$ echo a \\\n  b\n"
                    "a b\n```\n")  # fmt: skip
    [(kind, [write, echo])] = _blocks(page)
    assert kind == "empty" and write.text == "cat > a.csv <<'CSV'\nx\nCSV" and not write.output
    assert (echo.text, echo.output, echo.line) == ("echo a \\\n  b", ["a b"], 6)
    assert sum(len(p.values[2]) for p in EXAMPLES) >= 5
