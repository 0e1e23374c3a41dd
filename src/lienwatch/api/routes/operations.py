"""Tracker commands, repossessions, the strategy, coverage and KPIs."""

# No `from __future__ import annotations`: FastAPI reads the signatures at run time.
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from lienwatch import clock
from lienwatch.api.context import (
    ERRORS,
    ApiContext,
    Cursor,
    Id,
    Limit,
    Ref,
    decode_time_cursor,
    next_cursor,
    time_key,
)
from lienwatch.api.schemas import (
    RepossessionList,
    RepossessionOut,
    RepossessionSteps,
    StrategyOut,
    TrackerCommandSent,
)
from lienwatch.followup.model import TrackerCommand
from lienwatch.followup.repossession import LegalRoute
from lienwatch.followup.strategy import configured_strategy
from lienwatch.services.followup.coverage import business_as_of, coverage, kpis
from lienwatch.services.reads.book import loan_of_viewer
from lienwatch.services.reads.operations import (
    repossession_steps,
    repossession_view,
    strategy_view,
)
from lienwatch.services.repossession import RepossessionService
from lienwatch.services.strategies import publish_strategy


class TrackerCommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: TrackerCommand


class OrderIn(BaseModel):
    """A repossession order: the route the jurisdiction allows, the court's or notary's
    reference, and why."""

    model_config = ConfigDict(extra="forbid")

    route: LegalRoute
    legal_ref: str = Field("", max_length=120)
    why: str = Field(min_length=1, max_length=500)


class RecoveryIn(BaseModel):
    """The car is in the lender's hands: when, where, its condition, and whether the
    borrower's belongings found in it were returned."""

    model_config = ConfigDict(extra="forbid")

    recovered_on: date
    place: str = Field(min_length=1, max_length=200)
    condition: str = Field(min_length=1, max_length=200)
    property_returned: bool
    note: str = Field("", max_length=500)


class StrategyIn(BaseModel):
    """A strategy version as its TOML file holds it (name, version, profile, routine, ladders,
    challenger), written as JSON."""

    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any]


class ApprovalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._-]+$")


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["operations"], responses=ERRORS)
    Caller = context.caller

    @api.post("/loans/{ref}/tracker-commands", response_model=TrackerCommandSent,
              status_code=201)
    def tracker_command(ref: Ref, body: TrackerCommandIn, caller: Caller) -> TrackerCommandSent:
        """Send a remote command to the loan's tracker. It needs the loan past due and a
        supervisor: a supervisor's request is their approval; an agent's is refused (409 with
        the rule) and the refusal kept on the case timeline."""
        with context.session() as session:
            loan_of_viewer(session, caller.viewer, ref)
            action = context.followup(session).command_tracker(
                loan_ref=ref, command=body.command, by=caller.username, at=clock.now()
            )
            return TrackerCommandSent(loan=ref, command=body.command.value, case=action.case_id,
                                      action=action.id, outcome=action.outcome)  # fmt: skip

    def repossessions(session: Any) -> RepossessionService:
        return RepossessionService.from_settings(session, context.settings.repossession,
                                                 followup=context.followup(session))  # fmt: skip

    @api.post("/loans/{ref}/repossessions", response_model=RepossessionOut, status_code=201)
    def order(ref: Ref, body: OrderIn, caller: Caller) -> RepossessionOut:
        """Order the repossession of a loan of the team's (it waits for another supervisor's
        approval); refused (422 naming the rule) below the DPD floor, through a route the
        jurisdiction does not allow, or for a car not registered to the loan; a second order
        on the case is a 422."""
        with context.session() as session:
            loan = loan_of_viewer(session, caller.viewer, ref)
            repo = repossessions(session).order(loan_id=loan.id, route=body.route,
                                                legal_ref=body.legal_ref, by=caller.username,
                                                at=clock.now(), why=body.why)  # fmt: skip
            return RepossessionOut(**repossession_view(session, repo.id))

    @api.get("/repossessions", response_model=RepossessionList)
    def waiting(caller: Caller, limit: Limit = 100, cursor: Cursor = None) -> RepossessionList:
        """The repossession orders waiting for a supervisor's approval, oldest first, by
        pages."""
        after = decode_time_cursor(cursor)
        with context.session(write=False) as session:
            pending = context.followup(session).pending_repossessions(limit=limit, after=after)
            items = [repossession_view(session, p.repossession_id) for p in pending]
        return RepossessionList(items=items, next_cursor=next_cursor(
            pending, limit, lambda p: time_key(p.ordered_at, p.repossession_id)))

    @api.get("/repossessions/{repossession_id}", response_model=RepossessionOut)
    def repossession(repossession_id: Id, caller: Caller) -> RepossessionOut:
        """A repossession order and its state."""
        with context.session(write=False) as session:
            return RepossessionOut(**repossession_view(session, repossession_id))

    @api.get("/repossessions/{repossession_id}/steps", response_model=RepossessionSteps)
    def steps(repossession_id: Id, caller: Caller) -> RepossessionSteps:
        """The order's steps as logged on its case (order, approval, recovery, disposal),
        and the step it waits for with its deadline."""
        with context.session(write=False) as session:
            return RepossessionSteps(**repossession_steps(repossessions(session),
                                                          repossession_id))  # fmt: skip

    @api.post("/repossessions/{repossession_id}/approve", response_model=RepossessionOut)
    def approve(repossession_id: Id, body: ApprovalIn, caller: Caller) -> RepossessionOut:
        """A supervisor (not the one who ordered it) approves the order and assigns the
        recovery."""
        with context.session() as session:
            repossessions(session).approve(repossession_id=repossession_id, by=caller.username,
                                           assignee=body.assignee, at=clock.now())  # fmt: skip
            session.flush()
            return RepossessionOut(**repossession_view(session, repossession_id))

    @api.post("/repossessions/{repossession_id}/recovery", response_model=RepossessionOut)
    def recovery(repossession_id: Id, body: RecoveryIn, caller: Caller) -> RepossessionOut:
        """Record the recovery of the car of an approved order."""
        with context.session() as session:
            repossessions(session).record_recovery(
                repossession_id=repossession_id, by=caller.username, at=clock.now(),
                recovered_on=body.recovered_on, place=body.place, condition=body.condition,
                property_returned=body.property_returned, note=body.note,
            )  # fmt: skip
            session.flush()
            return RepossessionOut(**repossession_view(session, repossession_id))

    @api.get("/strategy", response_model=StrategyOut)
    def strategy(caller: Caller) -> StrategyOut:
        """The follow-up strategy in force: the configured one, or the newest version
        published since."""
        with context.session(write=False) as session:
            return StrategyOut(**strategy_view(context.followup(session).strategy))

    @api.post("/strategy", response_model=StrategyOut, status_code=201)
    def publish(body: StrategyIn, caller: Caller) -> StrategyOut:
        """Publish a new version of the strategy in force (risk analysts): checked as a
        strategy file is (422 naming the key at fault), the same name and compliance profile,
        a version above the one in force (else 409); the follow-up engine uses it from its
        next pass."""
        with context.session() as session:
            published = publish_strategy(
                session, document=body.document, by=caller.username, at=clock.now(),
                configured=configured_strategy(context.settings.followup.strategy),
            )  # fmt: skip
            return StrategyOut(**strategy_view(published))

    def moment(session: Any, at: datetime | None) -> datetime:
        return at or business_as_of(session, clock.now(), context.settings.time_zone)

    @api.get("/coverage", response_model=dict[str, Any])
    def coverage_now(
        caller: Caller, at: AwareDatetime | None = None, since: AwareDatetime | None = None
    ) -> dict[str, Any]:
        """The coverage invariant: every trigger and repossession step followed up in time,
        naming every breach and every uncovered loan (as ``lienwatch followup coverage``)."""
        with context.session(write=False) as session:
            service = context.followup(session)
            report = coverage(session, as_of=moment(session, at), since=since,
                              strategy=service.strategy, time_zone=context.settings.time_zone)
            return report.as_dict()

    @api.get("/kpis", response_model=dict[str, Any])
    def kpis_now(
        caller: Caller, since: AwareDatetime, at: AwareDatetime | None = None
    ) -> dict[str, Any]:
        """KPIs over ``[since, at]``: coverage, SLA breaches, contact, RPC and promise rates,
        cures by arm, roll rates, recovered (as ``lienwatch followup kpis``)."""
        with context.session(write=False) as session:
            service = context.followup(session)
            return kpis(session, since=since, as_of=moment(session, at),
                        strategy=service.strategy, catalogue=context.catalogue,
                        time_zone=context.settings.time_zone)  # fmt: skip

    return api
