"""Queues, cases and their timelines, and recording a task's outcome."""

# No `from __future__ import annotations`: FastAPI reads the signatures at run time.
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from lienwatch import clock
from lienwatch.api.context import (
    ERRORS,
    ApiContext,
    Cursor,
    Id,
    Limit,
    decode_cursor,
    decode_time_cursor,
    next_cursor,
)
from lienwatch.api.schemas import CaseDetail, OutcomeDone, QueuePage, Timeline
from lienwatch.errors import LienwatchError, NotFoundError
from lienwatch.followup.model import Outcome
from lienwatch.followup.outcomes import MAX_PROMISE_FEN
from lienwatch.services.reads.cases import case_detail, case_timeline, timeline_key
from lienwatch.services.reads.queues import my_queue, queue_key, team_queue
from lienwatch.services.reads.visibility import task_condition
from lienwatch.store.tables import Task

Reveal = Annotated[bool, Query(description="Phone and ID number in clear (supervisors, "
                                           "analysts; audited).")]  # fmt: skip


class OutcomeIn(BaseModel):
    """What happened on a task: the result and, for a promise to pay, its date and amount."""

    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    promised_on: date | None = None
    amount_fen: int | None = Field(None, ge=1, le=MAX_PROMISE_FEN)
    recording_ref: str | None = Field(None, min_length=1, max_length=120)
    consented: bool = False
    note: str = Field("", max_length=2000)


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["cases"], responses=ERRORS)
    Caller = context.caller

    def page(rows: list, limit: int) -> dict[str, Any]:
        """The page as a dict: FastAPI validates it once against the response model."""
        more = next_cursor(rows, limit, lambda r: list(queue_key(r)))
        return {"items": rows, "next_cursor": more}

    def after_key(cursor: str | None) -> tuple[int, str, int] | None:
        key = decode_cursor(cursor, 3)
        if key is None:
            return None
        priority, deadline, task = key
        if not isinstance(priority, int) or not isinstance(deadline, str) or not isinstance(
                task, int):  # fmt: skip
            raise LienwatchError("cursor: not a cursor this list handed out")
        try:
            date.fromisoformat(deadline[:10])
        except ValueError:
            raise LienwatchError("cursor: not a cursor this list handed out") from None
        return priority, deadline, task

    @api.get("/queue", response_model=QueuePage)
    def queue(caller: Caller, limit: Limit = 50, cursor: Cursor = None) -> dict[str, Any]:
        """My queue: the tasks assigned to me, most urgent first, with DPD, amount overdue,
        unsecured exposure and open alerts."""
        with context.session(write=False) as session:
            rows = my_queue(session, caller.viewer, limit=limit, after=after_key(cursor))
        return page(rows, limit)

    @api.get("/queue/team", response_model=QueuePage)
    def queue_of_team(
        caller: Caller, limit: Limit = 50, cursor: Cursor = None,
        team: Annotated[str | None, Query(max_length=80)] = None, unassigned: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        """The team's queue (a supervisor's team; an analyst any ``team`` or all)."""
        with context.session(write=False) as session:
            rows = team_queue(session, caller.viewer, limit=limit, after=after_key(cursor),
                              team=team, unassigned=unassigned)  # fmt: skip
        return page(rows, limit)

    @api.get("/cases/{case_id}", response_model=CaseDetail)
    def case(case_id: Id, caller: Caller, reveal: Reveal = False) -> dict[str, Any]:
        """A case: loan, borrower (phone and ID number masked unless revealed), vehicle,
        figures, open tasks. A case outside the caller's rows is 404."""
        with context.session() as session:
            return case_detail(session, caller.viewer, case_id, at=clock.now(), reveal=reveal,
                               client=caller.client)

    @api.get("/cases/{case_id}/timeline", response_model=Timeline)
    def timeline(
        case_id: Id, caller: Caller, limit: Limit = 200, cursor: Cursor = None
    ) -> dict[str, Any]:
        """Everything on the case, oldest first, by pages: triggers, steps and actions,
        refused contacts, alerts, payments, promises."""
        key = decode_time_cursor(cursor, row=str)
        after = None if key is None else (key[0].isoformat(), key[1])
        with context.session(write=False) as session:
            items = case_timeline(session, caller.viewer, case_id, limit=limit, after=after)
        more = next_cursor(items, limit, lambda i: list(timeline_key(i)))
        return {"case": case_id, "items": items, "next_cursor": more}

    @api.post("/tasks/{task_id}/outcome", response_model=OutcomeDone, status_code=201)
    def outcome(task_id: Id, body: OutcomeIn, caller: Caller) -> OutcomeDone:
        """Record a task's outcome. Calls and visits pass the compliance guard: a refused
        contact answers 409 with the rule and the next allowed time, and the refusal is
        recorded (on the case timeline and in the ledger)."""
        with context.session() as session:
            reachable = session.scalar(
                select(Task.id).where(Task.id == task_id, task_condition(caller.viewer))
            )
            if reachable is None:
                raise NotFoundError(f"task_id: no queued task {task_id}")
            action = context.followup(session).record_outcome(
                task_id=task_id, by=caller.username, at=clock.now(), outcome=body.outcome,
                promised_on=body.promised_on, amount=body.amount_fen,
                recording_ref=body.recording_ref, consented=body.consented, note=body.note,
            )  # fmt: skip
            return OutcomeDone(task=task_id, case=action.case_id, action=action.id,
                               kind=action.kind, outcome=action.outcome)  # fmt: skip

    return api
