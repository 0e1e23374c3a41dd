"""``/api/v1/models``: the behaviour score the follow-up challenger orders cases by, and the
application scorecard the pre-loan decision scores with. A behaviour fit is stored unpublished
(``lienwatch risk behaviour --save``, the nightly job's monthly refit, or
``POST /models/behaviour/fits``); a risk analyst publishes one, audited, and only then does it
score cases. Analysts publish a new scorecard (``lienwatch risk fit --save``'s verb), audited.
Those who read the figures see the fits and the models in force (docs/risk.md)."""

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
from lienwatch.services.behaviour import (
    behaviour_fits,
    fit_behaviour_score,
    fit_in_force,
    publish_behaviour_fit,
)

if TYPE_CHECKING:
    from lienwatch.store.tables import BehaviourFit


class BehaviourFitIn(BaseModel):
    """What to fit on: the nightly runs up to ``as_of`` (default: the last business day that
    ended), judged on the last ``test_months`` at the team's ``capacity``."""

    model_config = ConfigDict(extra="forbid")

    as_of: date | None = None
    test_months: int = Field(1, ge=1, le=24)
    capacity: float = Field(0.2, ge=0.01, le=1.0)


class PublishIn(BaseModel):
    """The stored fit to publish."""

    model_config = ConfigDict(extra="forbid")

    fit: int


class BehaviourFitOut(BaseModel):
    """A stored fit: the model as a readable table, its time-split figures (or why it could
    not be judged), and who published it when (both null while unpublished)."""

    fit: int
    fitted_through: date
    fitted_at: datetime
    published_by: str | None
    published_at: datetime | None
    model: dict[str, Any]
    figures: dict[str, Any]


class BehaviourFitsOut(BaseModel):
    items: list[BehaviourFitOut]


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
                           fitted_at=fit.fitted_at, published_by=fit.published_by,
                           published_at=fit.published_at, model=fit.model,
                           figures=fit.figures)  # fmt: skip


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["models"], responses=ERRORS)
    Caller = context.caller

    def today() -> date:
        """The last business day that ended (the fits' ``as_of`` by default)."""
        return ended_business_day(clock.now(), context.settings.time_zone)

    @api.get("/models/behaviour", response_model=BehaviourFitOut)
    def behaviour(caller: Caller) -> BehaviourFitOut:
        """The behaviour fit in force: the one published last among those made through a day
        before today, the one cases opening today are scored with (404 while none is)."""
        with context.session(write=False) as session:
            fit = fit_in_force(session, day=local_date(clock.now(), context.settings.time_zone))
            if fit is None:
                raise NotFoundError("model: no behaviour fit is in force; an analyst "
                                    "publishes a stored one with POST /api/v1/models/behaviour")
            return fit_view(fit)

    @api.get("/models/behaviour/fits", response_model=BehaviourFitsOut)
    def fits(caller: Caller) -> BehaviourFitsOut:
        """The stored fits, newest first (the last 24), published or not."""
        with context.session(write=False) as session:
            return BehaviourFitsOut(items=[fit_view(f) for f in behaviour_fits(session)])

    @api.post("/models/behaviour/fits", response_model=BehaviourFitOut, status_code=201)
    def refit(body: BehaviourFitIn, caller: Caller) -> BehaviourFitOut:
        """Fit the behaviour score on the book and store it unpublished (risk analysts): it
        scores nothing until published. Too little history is a 422 saying what is missing."""
        with context.session() as session:
            fit = fit_behaviour_score(session, through=body.as_of or today(), at=clock.now(),
                                      test_months=body.test_months,
                                      capacity=body.capacity)  # fmt: skip
            return fit_view(fit)

    @api.post("/models/behaviour", response_model=BehaviourFitOut)
    def publish_behaviour(body: PublishIn, caller: Caller) -> BehaviourFitOut:
        """Publish a stored fit (risk analysts), in the audit log: the follow-up engine scores
        the cases opened after its ``fitted_through`` with it. An unknown fit is a 404."""
        with context.session() as session:
            fit = publish_behaviour_fit(session, fit_id=body.fit, by=caller.username,
                                        at=clock.now(), client=caller.client)  # fmt: skip
            return fit_view(fit)

    @api.get("/models/scorecard", response_model=ScorecardOut)
    def scorecard(caller: Caller) -> ScorecardOut:
        """The application scorecard in force: the one published last, else the shipped one."""
        with context.session(write=False) as session:
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
