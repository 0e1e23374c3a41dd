"""Collateral alerts: the list with filters, and deciding on one (acknowledge, resolve,
false positive), the decision recorded with who and when; the alert rules analysts publish."""

# No `from __future__ import annotations`: FastAPI reads the signatures at run time.
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select

from lienwatch import clock
from lienwatch.api.context import (
    ERRORS,
    ApiContext,
    Cursor,
    Limit,
    decode_cursor,
    next_cursor,
)
from lienwatch.api.schemas import AlertOut, AlertPage, AlertRulesOut, AlertRuleVersionOut
from lienwatch.services.alert_rules import alert_rule_versions, publish_alert_rules
from lienwatch.services.alerts import decide_alert
from lienwatch.services.reads.alerts import alert_view, alerts, visible_alert
from lienwatch.store.tables import Loan, Vehicle


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["acknowledged", "resolved", "false_positive"]
    why: str = Field("", max_length=500)


class AlertRulesIn(BaseModel):
    """An alert-rule set as its TOML file holds it (version, thresholds, products), as JSON."""

    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any]


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["alerts"], responses=ERRORS)
    Caller = context.caller

    @api.get("/alerts", response_model=AlertPage)
    def list_alerts(
        caller: Caller, limit: Limit = 50, cursor: Cursor = None,
        status: Annotated[str | None, Query(max_length=16)] = None,
        type: Annotated[str | None, Query(max_length=32)] = None,
        loan: Annotated[str | None, Query(max_length=40)] = None,
        since: AwareDatetime | None = None,
    ) -> AlertPage:  # fmt: skip
        """Alerts newest first with their evidence; filters by status, type, loan, since."""
        key = decode_cursor(cursor, 1)
        with context.session(write=False) as session:
            rows = alerts(session, caller.viewer, limit=limit,
                          before=int(key[0]) if key else None, status=status, type_=type,
                          loan=loan, since=since)  # fmt: skip
        more = next_cursor(rows, limit, lambda r: [r["id"]])
        return AlertPage(items=rows, next_cursor=more)

    @api.post("/alerts/{alert_id}/decision", response_model=AlertOut)
    def decide(
        alert_id: Annotated[int, Path(ge=1, le=2**62)], body: DecisionIn, caller: Caller
    ) -> AlertOut:
        """Acknowledge (it stays open), resolve or mark a false positive, recorded with who,
        when and why (and in the ledger); a decided alert is a 409."""
        with context.session() as session:
            visible_alert(session, caller.viewer, alert_id)
            row = decide_alert(session, alert_id=alert_id, decision=body.decision,
                               by=caller.username, at=clock.now(), why=body.why)  # fmt: skip
            session.flush()
            loan = session.scalar(select(Loan.ref).where(Loan.id == row.loan_id))
            vin = session.scalar(select(Vehicle.vin).where(Vehicle.id == row.vehicle_id))
            return AlertOut(**alert_view(row, loan, vin or ""))

    @api.get("/alert-rules", response_model=AlertRulesOut)
    def alert_rules(caller: Caller) -> AlertRulesOut:
        """The alert rules in force now (their version; null: the ``[monitor]``
        configuration's) and every version published, newest first, each with its values
        and what it changed against the one before."""
        with context.session(write=False) as session:
            return AlertRulesOut(**alert_rule_versions(session, context.settings.monitor,
                                                       at=clock.now()))  # fmt: skip

    @api.post("/alert-rules", response_model=AlertRuleVersionOut, status_code=201)
    def publish_rules(body: AlertRulesIn, caller: Caller) -> AlertRuleVersionOut:
        """Publish a new version of the alert rules (risk analysts), in force from now: 422
        naming the key at fault, 409 for a version not above the newest. Batch runs judge by
        it from now, the live monitors from their next fleet reload (no restart)."""
        with context.session() as session:
            rules = publish_alert_rules(session, document=body.document, by=caller.username,
                                        at=clock.now())  # fmt: skip
            published = alert_rule_versions(session, context.settings.monitor, at=clock.now())
        return AlertRuleVersionOut(**next(v for v in published["versions"]
                                          if v["version"] == rules.version))  # fmt: skip

    return api
