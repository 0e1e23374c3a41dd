"""The values the follow-up service passes between its parts and returns, and what every
part works with."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from lienwatch.followup.channels import Dispatcher
from lienwatch.followup.model import Outcome
from lienwatch.followup.strategy import Strategy
from lienwatch.servicing.catalogue import ProductCatalogue


@dataclass(frozen=True, slots=True)
class LoanView:
    """What the engine needs of a loan: identity, contact and the latest servicing figures."""

    id: int
    ref: str
    product: str
    status: str
    time_zone: str
    phone: str
    email: str | None
    address: str  # postal, for letters
    province: str
    dpd: int
    bucket: str
    unsecured: int


@dataclass
class TickReport:
    raised: Counter[str] = field(default_factory=Counter)
    resolved: int = 0
    cases_opened: int = 0
    cases_closed: int = 0
    executed: int = 0  # automatic steps performed
    refused: int = 0  # contacts the guard refused
    queued: int = 0  # agent steps put into a queue
    assigned: int = 0
    escalated: int = 0  # warned by the watchdog before the deadline
    breached: int = 0
    skipped: int = 0  # 1 when another worker was running the scheduler
    steps: int = 0  # due steps claimed (then executed, refused, deferred or queued)
    adopted: int = 0  # backlog raised at go-live (past-due loans, open alerts, old events)
    uncovered: int = 0  # past-due loans found without a follow-up by the coverage check
    #: queued tasks no active agent can take, by ``team/skill``
    unstaffed: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "raised": dict(self.raised), "unstaffed": dict(self.unstaffed)}

    def add(self, other: TickReport) -> None:
        """Count another pass in (a tick and the step batches run after it)."""
        for name, value in other.__dict__.items():
            if isinstance(value, Counter):
                getattr(self, name).update(value)
            else:
                setattr(self, name, getattr(self, name) + value)


@dataclass(slots=True)
class DueStep:
    """A due step claimed by a batch: its trigger's columns that the batch reads, and those
    it changes (:data:`MOVED`), written back for the whole batch with one update."""

    id: int
    case_id: int
    loan_id: int
    kind: str
    ladder: str
    anchor_at: datetime
    step: int
    next_due_at: datetime
    deadline_at: datetime
    first_action_at: datetime | None
    warned_at: datetime | None
    resolved_at: datetime | None = None
    resolution: str | None = None

    #: The trigger's columns a step may change.
    MOVED = ("step", "next_due_at", "deadline_at", "first_action_at", "warned_at",
             "resolved_at", "resolution")  # fmt: skip

    def moved(self) -> dict[str, Any]:
        return {"trigger_id": self.id, **{name: getattr(self, name) for name in self.MOVED}}


@dataclass(frozen=True, slots=True)
class AgentOutcome:
    """One outcome for :meth:`~lienwatch.services.followup.FollowupService.record_outcomes`:
    what :meth:`~lienwatch.services.followup.FollowupService.record_outcome` takes but the
    agent."""

    task_id: int
    at: datetime
    outcome: Outcome | str
    promised_on: date | None = None
    amount: int | None = None
    recording_ref: str | None = None
    consented: bool = False
    note: str = ""
    #: The case the outcome is posted on (a case's page, which checked that the user reaches
    #: it): a task of another case is not found.
    case_id: int | None = None


class ServiceState:
    """What every part of :class:`~lienwatch.services.followup.FollowupService` works with
    (``service.py`` sets it)."""

    session: Session
    strategy: Strategy
    dispatcher: Dispatcher
    catalogue: ProductCatalogue
    agency: str
    watchdog_lead: timedelta
    zone: ZoneInfo
