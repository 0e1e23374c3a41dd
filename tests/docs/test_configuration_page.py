"""docs/configuration.md's table names every setting (a new one is documented or fails here)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from lienwatch.config import Settings

PAGE = Path(__file__).parents[2] / "docs" / "configuration.md"


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            keys += _keys(kind, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_every_setting_is_in_the_table():
    table = [line for line in PAGE.read_text(encoding="utf-8").splitlines()
             if line.startswith("| `")]  # fmt: skip
    text = "\n".join(table)

    def documented(key: str) -> bool:
        parts = key.split(".")
        ancestors = [".".join(parts[:i]) for i in range(1, len(parts))]
        # a table of keys (``products.<code>``, ``gateway.partners.NAME``) by its entries
        return (f"`{key}`" in text or f"`{key}." in text
                or any(f"`{a}.<" in text for a in ancestors))  # fmt: skip

    assert [key for key in _keys(Settings) if not documented(key)] == []


def test_the_table_is_one_table():
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| key |"))
    last = max(i for i, line in enumerate(lines) if line.startswith("| `"))
    assert all(line.startswith("|") for line in lines[first:last + 1])  # no blank line in it
