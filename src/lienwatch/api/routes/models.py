"""``/api/v1/models``: the behaviour score the follow-up challenger orders cases by, and the
application scorecard the pre-loan decision scores with. Risk analysts publish a new fit
(``lienwatch risk behaviour --save``'s and ``lienwatch risk fit --save``'s verbs), audited;
those who read the figures see the models in force (docs/risk.md)."""

# No `from __future__ import annotations`: FastAPI reads the signatures at run time.
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from lienwatch import clock
from lienwatch.api.context import ERRORS, ApiContext
from lienwatch.domain.calendar import ended_business_day, local_date
from lienwatch.errors import NotFoundError
from lienwatch.risk.scorecard import scorecard_document
from lienwatch.services.applications import (
    german_credit,
    publish_scorecard,
    published_scorecard,
    shipped_scorecard,
)
from lienwatch.services.behaviour import fit_behaviour_score, fit_in_force

if TYPE_CHECKING:
    from lienwatch.store.tables import BehaviourFit


class BehaviourFitIn(BaseModel):
    """What to fit on: the nightly runs up to ``as_of`` (default: the last business day that
    ended), judged on the last ``test_months`` at the team's ``capacity``."""

    model_config = ConfigDict(extra="forbid")

    as_of: date | None = None
    test_months: int = Field(1, ge=1, le=24)
    capacity: float = Field(0.2, ge=0.01, le=1.0)


class BehaviourFitOut(BaseModel):
    """A stored fit: the model as a readable table, and its time-split figures (or why it
    could not be judged)."""

    fit: int
    fitted_through: date
    fitted_at: datetime
    model: dict[str, Any]
    figures: dict[str, Any]


class ScorecardIn(BaseModel):
    """The training data to fit the scorecard on: the shipped German credit rows (the data
    set ``lienwatch risk fit`` fits on by default)."""

    model_config = ConfigDict(extra="forbid")

    dataset: Literal["german-credit"] = "german-credit"


class ScorecardOut(BaseModel):
    """A scorecard: its stored id (null: the shipped one, not stored yet) and the table
    ``lienwatch risk fit --json`` prints (scaling, points per attribute, what was dropped)."""

    scorecard: int | None
    document: dict[str, Any]


def fit_view(fit: "BehaviourFit") -> BehaviourFitOut:
    return BehaviourFitOut(fit=fit.id, fitted_through=fit.fitted_through,
                           fitted_at=fit.fitted_at, model=fit.model,
                           figures=fit.figures)  # fmt: skip


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["models"], responses=ERRORS)
    Caller = context.caller

    def today() -> date:
        """The last business day that ended (the fits' ``as_of`` by default)."""
        return ended_business_day(clock.now(), context.settings.time_zone)

    @api.get("/models/behaviour", response_model=BehaviourFitOut)
    def behaviour(caller: Caller) -> BehaviourFitOut:
        """The behaviour fit in force: the newest made through a day before today's business
        day, the one cases opening today are scored with (404 while none is)."""
        with context.session() as session:
            fit = fit_in_force(session, day=local_date(clock.now(), context.settings.time_zone))
            if fit is None:
                raise NotFoundError("model: no behaviour fit is in force; an analyst "
                                    "publishes one with POST /api/v1/models/behaviour")
            return fit_view(fit)

    @api.post("/models/behaviour", response_model=BehaviourFitOut, status_code=201)
    def publish_behaviour(body: BehaviourFitIn, caller: Caller) -> BehaviourFitOut:
        """Fit the behaviour score on the book and publish it (risk analysts): the follow-up
        engine scores the cases opened after ``as_of`` with it; in the audit log. Too little
        history is a 422 saying what is missing."""
        with context.session() as session:
            fit = fit_behaviour_score(
                session, through=body.as_of or today(), at=clock.now(),
                test_months=body.test_months, capacity=body.capacity, by=caller.username,
                client=caller.client,
            )  # fmt: skip
            return fit_view(fit)

    @api.get("/models/scorecard", response_model=ScorecardOut)
    def scorecard(caller: Caller) -> ScorecardOut:
        """The application scorecard in force: the one published last, else the shipped one."""
        with context.session() as session:
            record = published_scorecard(session)
            if record is None:
                return ScorecardOut(scorecard=None,
                                    document=scorecard_document(shipped_scorecard()))
            return ScorecardOut(scorecard=record.id, document=record.document)

    @api.post("/models/scorecard", response_model=ScorecardOut, status_code=201)
    def publish_card(body: ScorecardIn, caller: Caller) -> ScorecardOut:
        """Fit the application scorecard on the training data and publish it (risk
        analysts): it scores every application from now (``POST /api/v1/applications``, a
        book imported with its characteristics); in the audit log (``model_published``)."""
        with context.session() as session:
            card_id, document = publish_scorecard(
                session, training=german_credit(), source=body.dataset, by=caller.username,
                at=clock.now(), client=caller.client,
            )  # fmt: skip
            return ScorecardOut(scorecard=card_id, document=document)

    return api
