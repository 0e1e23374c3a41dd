"""The capacity rules as data: a versioned TOML file (``rules/capacity.toml`` is shipped)
naming an agent's working day, minutes per task, tasks a day per skill and the steps a
strategy allows substituting when a skill falls short."""

from __future__ import annotations

import functools
import tomllib
from datetime import time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lienwatch.followup.model import Channel, FollowupError
from lienwatch.followup.strategy import Duration, validated
from lienwatch.workforce.travel import TravelTable, parse_table

Skill = Literal["phone", "field"]


class Substitution(BaseModel):
    """Step ``channel`` of ``ladder`` may be replaced by the (automatic or desk) ``with``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    ladder: str = Field(min_length=1)
    channel: Channel
    replacement: tuple[Channel, ...] = Field(alias="with", min_length=1)


class CapacityRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    version: int = Field(ge=1)
    workday_start: time
    workday_end: time
    weekdays: frozenset[int] = frozenset(range(7))
    lookback_days: int = Field(default=14, ge=1)
    spread_from: Duration = timedelta(days=7)
    utilisation: float = Field(default=0.85, gt=0, le=1)
    minutes: dict[str, int]  # channel -> an agent's minutes per task
    daily_capacity: dict[Skill, int]
    substitutions: tuple[Substitution, ...] = ()
    #: Channels whose task is a trip: the round trip to the borrower's city is added to the
    #: minutes on site, one way from the travel table (``travel_table``: a CSV of province,
    #: city, minutes; unset, the shipped ``rules/travel.csv``), ``travel_unknown`` minutes
    #: for a place the table does not know.
    travel_channels: frozenset[str] = frozenset({"visit"})
    travel_table: str | None = None
    travel_unknown: int = Field(default=40, ge=0)

    @model_validator(mode="after")
    def _sane(self) -> CapacityRules:
        if self.workday_end <= self.workday_start:
            raise ValueError("workday_end must be after workday_start")
        if not self.weekdays <= set(range(7)):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        for channel, minutes in self.minutes.items():
            if channel not in Channel.__members__.values() or minutes <= 0:
                raise ValueError(f"minutes.{channel}: a channel with minutes above zero")
        return self

    @property
    def workday_minutes(self) -> int:
        start, end = self.workday_start, self.workday_end
        return (end.hour - start.hour) * 60 + end.minute - start.minute

    def task_minutes(self, channel: str) -> int:
        """An agent's minutes for a task of ``channel`` (10 for one the rules do not name)."""
        return self.minutes.get(channel, 10)

    def substitution(self, ladder: str, channel: str) -> Substitution | None:
        return next((s for s in self.substitutions
                     if s.ladder == ladder and s.channel == channel), None)  # fmt: skip

    def per_hour(self) -> dict[str, float]:
        """An agent's tasks an hour by channel (a visit's without its travel)."""
        return {channel: round(60 / minutes, 2) for channel, minutes in self.minutes.items()}

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def travel(self) -> TravelTable:
        """The travel table the rules name (read once per process)."""
        return _travel_table(self.travel_table, self.travel_unknown)


def parse_rules(data: dict[str, Any], *, source: str) -> CapacityRules:
    return validated(CapacityRules, data, source=source)


def read_toml(path: Path | None, shipped: str) -> tuple[dict[str, Any], str]:
    """The mapping of the TOML file at ``path``, or of the shipped ``rules/<shipped>``."""
    if path is None:
        text = resources.files("lienwatch.workforce").joinpath(f"rules/{shipped}")
        return tomllib.loads(text.read_text(encoding="utf-8")), f"rules/{shipped}"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")), str(path)
    except tomllib.TOMLDecodeError as exc:
        raise FollowupError(f"{path}: {exc}") from None
    except OSError as exc:
        raise FollowupError(f"{path}: cannot read ({exc.strerror})") from None


@functools.cache
def _travel_table(path: str | None, unknown: int) -> TravelTable:
    if path is None:
        text = resources.files("lienwatch.workforce").joinpath("rules/travel.csv")
        return parse_table(text.read_text(encoding="utf-8"), unknown=unknown,
                           source="rules/travel.csv")  # fmt: skip
    try:
        return parse_table(Path(path).read_text(encoding="utf-8"), unknown=unknown, source=path)
    except OSError as exc:
        raise FollowupError(f"travel_table: {path}: cannot read ({exc.strerror})") from None


@functools.cache
def capacity_rules(path: Path | None = None) -> CapacityRules:
    """The shipped capacity rules, or those of the file at ``path``."""
    data, source = read_toml(path, "capacity.toml")
    return parse_rules(data, source=source)
