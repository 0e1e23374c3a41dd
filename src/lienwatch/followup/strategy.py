"""Strategies as data: versioned TOML files of ladders, with an optional challenger arm.

A ladder is chosen per segment (trigger kind, bucket, product, alert type, delinquency): the
first ladder whose filters all match wins, and every trigger kind must have an unfiltered
ladder so that no trigger is ever left without one. Offsets are measured from the trigger's
anchor (the day after a missed due date, the alert's raise time …) and are never negative.
"""

from __future__ import annotations

import functools
import random
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from lienwatch.followup.model import CaseStatus, Channel, FollowupError, TriggerKind, parse_duration

Arm = Literal["champion", "challenger"]
#: How an arm orders agent tasks: "dpd" (unsecured exposure × the DPD band's roll probability,
#: the champion) or "behaviour" (unsecured exposure × the behaviour score at case opening).
Priority = Literal["dpd", "behaviour"]
SHIPPED = ("cn", "us")


def _as_duration(value: Any) -> timedelta:
    return value if isinstance(value, timedelta) else parse_duration(value)


# A duration as strategy files write it ("3d", "4h", "0"), or a timedelta.
Duration = Annotated[timedelta, BeforeValidator(_as_duration)]


class StepSpec(BaseModel):
    """One rung of a ladder: do ``channel`` at anchor + ``offset``, within ``sla``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: Channel
    offset: Duration
    sla: Duration
    status: CaseStatus | None = None  # the case status this step moves the case to
    skill: Literal["phone", "field"] | None = None  # agent steps: who may take it
    team: str | None = None  # agent steps: only this team's agents (users.team) take it

    @field_validator("sla")
    @classmethod
    def _positive_sla(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("an SLA must be longer than zero")
        return value

    @property
    def required_skill(self) -> str:
        if self.skill:
            return self.skill
        return "field" if self.channel is Channel.VISIT else "phone"


class LadderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    trigger: TriggerKind
    buckets: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    alert_types: tuple[str, ...] = ()
    delinquent: bool | None = None
    escalate_to: Literal["supervisor", "team_lead"]  # who an SLA breach goes to
    steps: tuple[StepSpec, ...] = Field(min_length=1)
    # After the last step the trigger is still open (a delinquent loan): repeat that step.
    repeat_every: Duration = timedelta(days=7)

    @field_validator("repeat_every")
    @classmethod
    def _positive_repeat(cls, value: timedelta) -> timedelta:
        # A zero repeat would make the last step due again as soon as it is done: step
        # batches would repeat it without end.
        if value <= timedelta(0):
            raise ValueError("repeat_every must be longer than zero")
        return value

    @field_validator("steps")
    @classmethod
    def _ordered(cls, steps: tuple[StepSpec, ...]) -> tuple[StepSpec, ...]:
        offsets = [step.offset for step in steps]
        if offsets != sorted(offsets):
            raise ValueError("steps must be in offset order")
        return steps

    @property
    def unfiltered(self) -> bool:
        return not (self.buckets or self.products or self.alert_types) and self.delinquent is None

    def matches(self, segment: Segment) -> bool:
        return (
            segment.trigger is self.trigger
            and (not self.buckets or segment.bucket in self.buckets)
            and (not self.products or segment.product in self.products)
            and (not self.alert_types or segment.alert_type in self.alert_types)
            and (self.delinquent is None or segment.delinquent == self.delinquent)
        )


class RoutineSpec(BaseModel):
    """The configurable schedule of routine follow-ups of a performing loan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pre_due_lead: timedelta = timedelta(days=3)
    welcome_after: timedelta = timedelta(days=2)
    tracker_review_every: timedelta = timedelta(days=30)
    inspection_every: timedelta = timedelta(days=365)

    @field_validator("*", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        if isinstance(value, timedelta):
            return value
        return parse_duration(value)


class ChallengerSpec(BaseModel):
    """The challenger arm: its own versions of some ladders, or its own queue priority, or
    both. ``priority = "behaviour"`` orders the arm's agent tasks by expected loss with the
    behaviour score (unsecured exposure × the probability of rolling to M2+ scored when the
    case opened) instead of the champion's DPD-band probability."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    split: float = Field(gt=0, lt=1)  # share of new cases given to the challenger
    seed: int = 0
    ladders: tuple[LadderSpec, ...] = ()  # replace the champion's by name
    priority: Priority = "dpd"

    @model_validator(mode="after")
    def _changes_something(self) -> ChallengerSpec:
        if not self.ladders and self.priority == "dpd":
            raise ValueError("give it ladders or priority = \"behaviour\" (it "
                             "would be the champion)")  # fmt: skip
        return self


class Strategy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    version: int = Field(ge=1)
    profile: Literal["cn", "us"]  # the compliance profile its contacts pass
    routine: RoutineSpec = RoutineSpec()
    #: How far ahead a promise to pay may be dated, from the day it is made: one further off
    #: could be neither broken nor followed up for months.
    promise_within: timedelta = timedelta(days=30)
    ladders: tuple[LadderSpec, ...] = Field(min_length=1)
    challenger: ChallengerSpec | None = None

    @field_validator("promise_within", mode="before")
    @classmethod
    def _promise_within(cls, value: Any) -> timedelta:
        within = value if isinstance(value, timedelta) else parse_duration(value)
        if within < timedelta(days=1):
            raise ValueError("must be at least 1d")
        return within

    @model_validator(mode="after")
    def _every_trigger_has_a_ladder(self) -> Strategy:
        names = [ladder.name for ladder in self.ladders]
        for kind in TriggerKind:
            if not any(ladder.trigger is kind and ladder.unfiltered for ladder in self.ladders):
                raise ValueError(f"ladders: no unfiltered ladder for trigger {kind.value!r}")
        if self.challenger:
            for ladder in self.challenger.ladders:
                if ladder.name not in names:
                    raise ValueError(f"challenger.ladders: {ladder.name!r} replaces no ladder")
        return self

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def channels(self) -> frozenset[Channel]:
        """Every channel a step of either arm uses."""
        ladders = (*self.ladders, *(self.challenger.ladders if self.challenger else ()))
        return frozenset(step.channel for ladder in ladders for step in ladder.steps)

    def ladder_for(self, segment: Segment, arm: Arm = "champion") -> LadderSpec:
        """The first ladder matching ``segment``, the challenger's version on that arm."""
        ladder = next(ladder for ladder in self.ladders if ladder.matches(segment))
        if arm == "challenger" and self.challenger:
            for replacement in self.challenger.ladders:
                if replacement.name == ladder.name:
                    return replacement
        return ladder

    def priority_of(self, arm: Arm | str | None) -> Priority:
        """How ``arm`` orders its agent tasks (the champion always by DPD band)."""
        if arm == "challenger" and self.challenger:
            return self.challenger.priority
        return "dpd"

    @property
    def scores_cases(self) -> bool:
        """Whether a new case needs its behaviour score (an arm orders by it)."""
        return self.challenger is not None and self.challenger.priority == "behaviour"

    def arm_for(self, stratum: str, index: int) -> Arm:
        """The arm of the ``index``-th new case of ``stratum`` (e.g. its bucket).

        Permuted blocks: within each block of cases of a stratum exactly the split's share
        goes to the challenger, in a seeded random order, so the arms stay balanced per
        bucket however few cases it has.
        """
        if self.challenger is None:
            return "champion"
        share = Fraction(self.challenger.split).limit_denominator(20)
        size = share.denominator
        block = [True] * share.numerator + [False] * (size - share.numerator)
        random.Random(f"{self.challenger.seed}:{stratum}:{index // size}").shuffle(block)
        return "challenger" if block[index % size] else "champion"


@dataclass(frozen=True, slots=True)
class Segment:
    trigger: TriggerKind
    bucket: str = "M0"
    product: str = ""
    alert_type: str = ""
    delinquent: bool = False


Model = TypeVar("Model", bound=BaseModel)


def validated(model: type[Model], data: dict[str, Any], *, source: str) -> Model:
    """``data`` as a ``model`` (a strategy, or another rules file read as data); the first
    problem becomes ``source: key.path: reason``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        reason = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            reason = "unknown key"
        # A whole-strategy rule has no location of its own: its message names the key.
        where = f"{source}: {key}" if key else source
        raise FollowupError(f"{where}: {reason}") from None


def parse_strategy(data: dict[str, Any], *, source: str) -> Strategy:
    """Validate a strategy mapping; the first problem becomes ``source: key.path: reason``."""
    return validated(Strategy, data, source=source)


def load_strategy(path: Path) -> Strategy:
    """Read a strategy TOML file; refuse it with the key at fault."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise FollowupError(f"{path}: {exc}") from None
    except OSError as exc:
        raise FollowupError(
            f"followup.strategy: {str(path)!r} is neither a shipped strategy "
            f"({', '.join(SHIPPED)}) nor a readable file ({exc.strerror})"
        ) from None
    return parse_strategy(data, source=str(path))


@functools.cache
def configured_strategy(name_or_path: str) -> Strategy:
    """``[followup] strategy``: a shipped strategy's name or the path of a strategy file."""
    return shipped_strategy(name_or_path) if name_or_path in SHIPPED else load_strategy(
        Path(name_or_path))


def shipped_strategy(name: str) -> Strategy:
    """The default strategy shipped for ``cn`` or ``us`` (read once per process: a tick and
    every batch of due steps build their service from it; the model is frozen)."""
    if name not in SHIPPED:
        raise FollowupError(f"strategy: no shipped strategy {name!r} (choose from cn, us)")
    return parse_strategy(strategy_document(name), source=f"strategies/{name}.toml")


def strategy_document(name_or_path: str) -> dict[str, Any]:
    """The mapping a strategy file holds (a shipped strategy's name or a file's path, read as
    :func:`configured_strategy` reads it): what a new version to publish starts from."""
    if name_or_path in SHIPPED:
        source = resources.files("lienwatch.followup").joinpath(f"strategies/{name_or_path}.toml")
        return tomllib.loads(source.read_text(encoding="utf-8"))
    configured_strategy(name_or_path)  # a file that is no strategy is refused with the reason
    return tomllib.loads(Path(name_or_path).read_text(encoding="utf-8"))
