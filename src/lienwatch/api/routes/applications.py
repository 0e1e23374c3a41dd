"""Loan applications: the pre-loan decision on a batch (check, scorecard, grade, amount and
rate), every decision with its reasons (docs/risk.md). Each decision is kept with the
application's attributes (the bin of each characteristic), which the daily report's scorecard
stability reads; an application decided again under the same id replaces the stored one."""

# No `from __future__ import annotations`: FastAPI reads the signatures at run time.
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from lienwatch import clock
from lienwatch.api.context import ApiContext
from lienwatch.api.errors import ErrorBody
from lienwatch.services.applications import decide_and_record

ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 422)}


class ApplicationsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Each application as the columns of ``lienwatch risk score``'s file, values as text
    #: (money in yuan), linked to each other for fraud rings.
    applications: list[dict[StrictStr, StrictStr]] = Field(min_length=1, max_length=1000)


class DecisionOut(BaseModel):
    application_id: str
    score: int
    grade: str
    decision: str  # approve | refer | decline
    amount: str  # yuan
    apr: str
    term_months: int
    installment: str  # yuan
    dti: str | None
    reasons: list[dict[str, Any]]  # hard findings first, then the scorecard's reason codes


class DecisionsOut(BaseModel):
    decisions: list[DecisionOut]


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["applications"], responses=ERRORS)
    Caller = context.caller

    @api.post("/applications", response_model=DecisionsOut)
    def decide(body: ApplicationsIn, caller: Caller) -> DecisionsOut:
        """Check, score and decide each application: score, grade A-E, approve / refer /
        decline, the amount, APR and term granted, and the reasons (hard findings first,
        then the four characteristics that cost the most points)."""
        with context.session() as session:
            decisions = decide_and_record(session, body.applications, at=clock.now())
        return DecisionsOut(decisions=[DecisionOut(**d.as_json()) for d in decisions])

    return api
