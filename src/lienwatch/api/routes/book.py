"""The book: loans (terms, schedule, state, payments; posting a payment), borrowers,
vehicles and their positions, devices."""

# No `from __future__ import annotations`: FastAPI reads the signatures at run time.
from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select

from lienwatch import clock
from lienwatch.api.context import (
    ERRORS,
    ApiContext,
    Cursor,
    Limit,
    Ref,
    decode_cursor,
    decode_time_cursor,
    next_cursor,
    time_key,
)
from lienwatch.api.schemas import (
    BorrowerOut,
    DevicePage,
    LoanHits,
    LoanPage,
    LoanStateOut,
    LoanTermsOut,
    PaymentList,
    PaymentPosted,
    PaymentReversed,
    ScheduleOut,
    Track,
    VehicleOut,
)
from lienwatch.errors import NotFoundError
from lienwatch.services.lookup import find_loans
from lienwatch.services.payments import post_payment, reverse_payment
from lienwatch.services.reads import book, fleet
from lienwatch.services.reads.people import borrower_view
from lienwatch.services.reads.visibility import loan_condition
from lienwatch.store.tables import Borrower, Loan

Vin = Annotated[str, Path(min_length=1, max_length=17)]


class PaymentIn(BaseModel):
    """A payment received; ``external_id`` (the bank's reference) is the idempotency key: the
    same payment posted again changes nothing, another one under the same key is a 409."""

    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=80)
    paid_on: date
    amount_fen: int = Field(ge=1, le=10**12)
    channel: str = Field("bank_debit", min_length=1, max_length=20)
    payer_account: str | None = Field(None, min_length=1, max_length=64)  # who paid, if known
    payer_name: str | None = Field(None, min_length=1, max_length=200)


class ReversalIn(BaseModel):
    """Why a payment is reversed (it bounced)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200)


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["book"], responses=ERRORS)
    Caller = context.caller

    @api.get("/loans", response_model=LoanPage)
    def loans(
        caller: Caller, limit: Limit = 50, cursor: Cursor = None,
        status: Annotated[str | None, Query(max_length=16)] = None,
        borrower: Annotated[str | None, Query(max_length=40)] = None,
    ) -> LoanPage:  # fmt: skip
        """The loans the caller reaches, by reference, with their latest figures."""
        key = decode_cursor(cursor, 1)
        with context.session(write=False) as session:
            rows = book.loans(session, caller.viewer, limit=limit,
                              after=str(key[0]) if key else None, status=status,
                              borrower=borrower)  # fmt: skip
        more = next_cursor(rows, limit, lambda r: [r["ref"]])
        return LoanPage(items=rows, next_cursor=more)

    @api.get("/loans/{ref}", response_model=LoanTermsOut)
    def loan(ref: Ref, caller: Caller) -> LoanTermsOut:
        """A loan's terms."""
        with context.session(write=False) as session:
            return LoanTermsOut(**book.loan_terms(session, caller.viewer, ref))

    @api.get("/loans/{ref}/schedule", response_model=ScheduleOut)
    def schedule(ref: Ref, caller: Caller) -> ScheduleOut:
        """The contractual schedule."""
        with context.session(write=False) as session:
            return ScheduleOut(loan=ref, installments=book.schedule(session, caller.viewer, ref))

    @api.get("/loans/{ref}/state", response_model=LoanStateOut)
    def state(
        ref: Ref, caller: Caller,
        as_of: Annotated[date | None, Query(description="Business date [default: today].")]
        = None,
    ) -> LoanStateOut:  # fmt: skip
        """The loan's state as of a date, replayed from its terms and payments."""
        day = as_of or clock.now().astimezone(ZoneInfo(context.settings.time_zone)).date()
        with context.session(write=False) as session:
            return LoanStateOut(**book.state(session, caller.viewer, ref, as_of=day,
                                             catalogue=context.catalogue))  # fmt: skip

    @api.get("/loans/{ref}/payments", response_model=PaymentList)
    def payments(ref: Ref, caller: Caller, limit: Limit = 100, cursor: Cursor = None,
                 reveal: bool = False) -> PaymentList:  # fmt: skip
        """Payments received, reversed ones included, by value date, by pages; who paid
        masked, in clear with ``reveal`` for supervisors and analysts (each such view is in
        the audit log)."""
        after = decode_time_cursor(cursor, day=True, row=str)
        with context.session() as session:
            rows = book.payments(session, caller.viewer, ref, limit=limit, after=after,
                                 reveal=reveal, at=clock.now(), client=caller.client)
        return PaymentList(loan=ref, items=rows, next_cursor=next_cursor(
            rows, limit, lambda r: time_key(r["paid_on"], r["external_id"])))  # fmt: skip

    @api.post("/loans/{ref}/payments", response_model=PaymentPosted, status_code=201,
              responses={200: {"model": PaymentPosted, "description": "Posted before"}})
    def post(ref: Ref, body: PaymentIn, caller: Caller, response: Response) -> PaymentPosted:
        """Post a payment, idempotent by ``external_id``: 201 the first time, 200 for the same
        payment again, 409 for another payment under the same key."""
        with context.session() as session:
            loan = book.loan_of_viewer(session, caller.viewer, ref)
            payment, new = post_payment(
                session, loan=loan, external_id=body.external_id, paid_on=body.paid_on,
                amount=body.amount_fen, channel=body.channel, by=caller.username,
                at=clock.now(), payer_account=body.payer_account, payer_name=body.payer_name,
            )  # fmt: skip
            session.flush()
            if not new:
                response.status_code = 200
            return PaymentPosted(**book.payment_view(payment), new=new)

    @api.post("/payments/{external_id}/reverse", response_model=PaymentReversed,
              status_code=201,
              responses={200: {"model": PaymentReversed, "description": "Reversed before"}})
    def reverse(
        external_id: Annotated[str, Path(min_length=1, max_length=80)], body: ReversalIn,
        caller: Caller, response: Response,
    ) -> PaymentReversed:  # fmt: skip
        """Reverse a payment (it bounced): the next servicing run replays its loan without it.
        Idempotent: 201 the first time, 200 (``reversed_now`` false, nothing changed) after."""
        with context.session() as session:
            payment, now = reverse_payment(session, external_id=external_id, reason=body.reason,
                                           by=caller.username, at=clock.now())  # fmt: skip
            if not now:
                response.status_code = 200
            return PaymentReversed(**book.payment_view(payment),
                                   loan=payment.loan.ref,
                                   reversed_now=now)  # fmt: skip

    @api.get("/search/loans", response_model=LoanHits)
    def search(
        caller: Caller, q: Annotated[str, Query(min_length=1, max_length=40)],
        by: Annotated[Literal["ref", "plate", "vin", "phone"], Query()] = "ref",
    ) -> LoanHits:  # fmt: skip
        """Loans by reference, plate or VIN (a prefix, any case) or the borrower's whole phone
        number, at most 50, phones masked; a search by phone is written to the audit log."""
        with context.session() as session:
            rows = find_loans(session, caller.viewer, q, by=by, at=clock.now(),
                              client=caller.client)  # fmt: skip
        return LoanHits(items=rows)

    @api.get("/borrowers/{ref}", response_model=BorrowerOut)
    def borrower(ref: Ref, caller: Caller, reveal: bool = False) -> BorrowerOut:
        """A borrower: phone and ID number masked, in clear with ``reveal`` for supervisors and
        analysts (each such view is in the audit log)."""
        with context.session() as session:
            row = session.scalar(
                select(Borrower).join(Loan, Loan.borrower_id == Borrower.id)
                .where(Borrower.ref == ref, loan_condition(caller.viewer)).limit(1)
            )  # fmt: skip
            if row is None:
                raise NotFoundError(f"ref: no borrower {ref!r}")
            return BorrowerOut(**borrower_view(session, caller.viewer, row, reveal=reveal,
                                               at=clock.now(), client=caller.client))  # fmt: skip

    @api.get("/vehicles/{vin}", response_model=VehicleOut)
    def vehicle(vin: Vin, caller: Caller) -> VehicleOut:
        """A financed vehicle and its loan's latest figures."""
        with context.session(write=False) as session:
            return VehicleOut(**book.vehicle_view(session, caller.viewer, vin))

    @api.get("/vehicles/{vin}/positions", response_model=Track)
    def positions(
        vin: Vin, caller: Caller, since: AwareDatetime, until: AwareDatetime,
        limit: Annotated[int, Query(ge=1, le=20_000)] = 5000,
    ) -> Track:  # fmt: skip
        """The vehicle's fixes (every device) in ``[since, until)``, at most 31 days."""
        with context.session(write=False) as session:
            rows = fleet.vehicle_positions(session, caller.viewer, vin, since=since,
                                           until=until, limit=limit)  # fmt: skip
        return Track(vin=vin, items=rows)

    @api.get("/devices", response_model=DevicePage, tags=["fleet"])
    def devices(
        caller: Caller, limit: Limit = 100, cursor: Cursor = None,
        status: Annotated[str | None, Query(max_length=10)] = None,
        vin: Annotated[str | None, Query(max_length=17)] = None,
    ) -> DevicePage:  # fmt: skip
        """Trackers with their vehicle, status and last position."""
        key = decode_cursor(cursor, 1)
        with context.session(write=False) as session:
            rows = fleet.devices(session, limit=limit, after=int(key[0]) if key else None,
                                 status=status, vin=vin)  # fmt: skip
        more = next_cursor(rows, limit, lambda r: [r["id"]])
        return DevicePage(items=rows, next_cursor=more)

    return api

