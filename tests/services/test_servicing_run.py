"""The nightly run against the store, on SQLite and PostgreSQL: snapshots equal the exact
per-loan path, bucket history is append-only, events are stored once, statuses follow."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from lienwatch.services.ledger import LedgerService
from lienwatch.services.servicing import run_nightly, run_nightly_days
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.servicing.engine import loan_state
from lienwatch.servicing.product import LoanTerms, Payment
from lienwatch.store.repositories import PaymentRepository
from lienwatch.store.tables import BucketChange, Event, Loan, LoanSnapshot, User
from tests import factories

CATALOGUE = ProductCatalogue.from_tables({"default": {"grace_days": 3, "late_fee": "50.00"}})


def nightly(session, as_of: date):
    return run_nightly(session, CATALOGUE, as_of=as_of)


@pytest.fixture
def book(db_session):
    """Two loans disbursed 2026-01-15: L-good pays every month, L-late pays only once."""
    good = factories.loan(db_session, "L-good")
    late = factories.loan(db_session, "L-late")
    payments = PaymentRepository(db_session)
    for installment in good.installments[:6]:
        payments.record(
            loan=good, external_id=f"G{installment.n}", paid_on=installment.due_date,
            amount=installment.principal + installment.interest,
        )  # fmt: skip
    first = late.installments[0]
    payments.record(
        loan=late, external_id="L1", paid_on=first.due_date, amount=first.principal + first.interest
    )
    return good, late


def snapshot(session, ref: str, as_of: date) -> LoanSnapshot:
    return session.scalars(
        select(LoanSnapshot).join(Loan).where(Loan.ref == ref, LoanSnapshot.as_of == as_of)
    ).one()


def test_snapshots_equal_the_exact_path(db_session, book):
    as_of = date(2026, 5, 20)
    counts = nightly(db_session, as_of)
    assert counts.loans == 2
    for loan in book:
        terms = LoanTerms(
            loan.ref,
            loan.principal,
            loan.annual_rate,
            loan.term_months,
            "annuity",
            loan.disbursed_on,
        )
        paid = [Payment(p.external_id, p.paid_on, p.amount) for p in loan.payments]
        exact = loan_state(terms, CATALOGUE.get(loan.product), paid, as_of)
        row = snapshot(db_session, loan.ref, as_of)
        assert (row.dpd, row.bucket, row.status) == (exact.dpd, exact.bucket, exact.status)
        assert row.outstanding_principal == exact.outstanding_principal
        assert row.overdue_interest == exact.overdue_interest
        assert row.penalty_accrued == exact.penalty_accrued
        assert row.fees_due == exact.fees_due
        assert row.payoff == exact.payoff_amount
    late = snapshot(db_session, "L-late", as_of)
    assert late.dpd == (as_of - date(2026, 3, 15)).days - 3  # oldest unpaid due, less grace
    assert late.bucket == "M3" and late.status == "delinquent"
    assert late.ead > late.outstanding_principal > 0
    assert snapshot(db_session, "L-good", as_of).dpd == 0


def test_bucket_history_is_append_only_and_events_are_stored_once(db_session, book):
    for as_of in (date(2026, 3, 10), date(2026, 3, 20), date(2026, 3, 20), date(2026, 4, 30)):
        nightly(db_session, as_of)
    late_id = book[1].id
    history = db_session.execute(
        select(BucketChange.changed_on, BucketChange.from_bucket, BucketChange.to_bucket)
        .where(BucketChange.loan_id == late_id)
        .order_by(BucketChange.changed_on)
    ).all()
    assert [tuple(row) for row in history] == [
        (date(2026, 3, 10), None, "M0"),
        (date(2026, 3, 20), "M0", "M1"),
        (date(2026, 4, 30), "M1", "M2"),
    ]
    events = db_session.scalars(
        select(Event).where(Event.loan_id == late_id).order_by(Event.occurred_at)
    ).all()
    assert [e.payload["to"] for e in events] == ["M0", "M1", "M2"]
    assert {e.kind for e in events} == {"bucket_changed"}
    # Re-running a day replaced its snapshots rather than adding rows.
    per_day = db_session.scalar(
        select(func.count())
        .select_from(LoanSnapshot)
        .where(LoanSnapshot.as_of == date(2026, 3, 20))
    )
    assert per_day == 2


def test_loan_status_follows_the_run_and_cures(db_session, book):
    late = book[1]
    nightly(db_session, date(2026, 4, 30))
    db_session.refresh(late)
    assert late.status == "delinquent"
    # The borrower pays everything overdue, backdated to 2026-04-20: the next run cures.
    state = snapshot(db_session, "L-late", date(2026, 4, 30))
    PaymentRepository(db_session).record(
        loan=late, external_id="CATCH-UP", paid_on=date(2026, 4, 20), amount=state.payoff
    )
    nightly(db_session, date(2026, 5, 1))
    db_session.refresh(late)
    assert late.status in {"active", "settled", "closed"}
    assert snapshot(db_session, "L-late", date(2026, 5, 1)).dpd == 0


def test_catalogue_errors_name_the_key():
    with pytest.raises(ValueError, match=r"products\.gold\.late_fee"):
        ProductCatalogue.from_tables({"gold": {"late_fee": "a lot"}})
    with pytest.raises(ValueError, match=r"products\.gold\.colour: unknown key"):
        ProductCatalogue.from_tables({"gold": {"colour": "red"}})
    with pytest.raises(ValueError, match=r"products\.default\.overpayment"):
        ProductCatalogue.from_tables({"default": {"overpayment": "refund"}})
    with pytest.raises(ValueError, match=r"products\.default\.settle_at_payoff"):
        ProductCatalogue.from_tables({"default": {"settle_at_payoff": "yes"}})
    assert not ProductCatalogue.from_tables(
        {"default": {"settle_at_payoff": False}}
    ).get("gold").settle_at_payoff
    catalogue = ProductCatalogue.from_tables(
        {"default": {"grace_days": 5}, "gold": {"late_fee": 20}}
    )
    assert catalogue.get("gold").grace_days == 5 and catalogue.get("gold").late_fee == 2000
    assert catalogue.get("other").grace_days == 5


def test_a_paid_loan_closes_only_once_its_mortgage_registration_is_released(db_session):
    loan = factories.loan(db_session, "L-paid")
    db_session.add(User(username="sam", display_name="sam", role="supervisor", team="east"))
    ledger = LedgerService(db_session)
    at = datetime(2026, 1, 15, 2, tzinfo=UTC)
    ledger.register_collateral(
        vin=loan.vehicle.vin, plate=loan.vehicle.plate, authority="北京市车辆管理所",
        certificate="110000000002", registered_on=date(2026, 1, 15), loan_ref=loan.ref, by="sam",
        at=at,
    )  # fmt: skip
    for installment in loan.installments:  # every installment on its due day
        PaymentRepository(db_session).record(
            loan=loan, external_id=f"P{installment.n}", paid_on=installment.due_date,
            amount=installment.principal + installment.interest,
        )  # fmt: skip
    maturity = loan.installments[-1].due_date
    nightly(db_session, maturity)
    assert snapshot(db_session, "L-paid", maturity).status == "release-pending"
    assert loan.status == "release-pending"
    released_on = maturity + timedelta(days=5)
    ledger.release_collateral(vin=loan.vehicle.vin, released_on=released_on,
                              certificate="JY-110000000002", by="sam", at=at)  # fmt: skip
    nightly(db_session, released_on - timedelta(days=1))  # still registered that day
    assert loan.status == "release-pending"
    nightly(db_session, released_on)
    assert snapshot(db_session, "L-paid", released_on).status == "closed"
    db_session.refresh(loan)
    assert loan.status == "closed"


def _recorded(session) -> dict[str, list[tuple]]:
    """Every row the nightly runs write, without surrogate keys and wall-clock times, in a
    stable order."""
    snapshots = [c for c in LoanSnapshot.__table__.columns if c.name != "id"]
    changes = [c for c in BucketChange.__table__.columns if c.name != "id"]
    events = [c for c in Event.__table__.columns if c.name not in {"id", "created_at"}]
    return {
        "snapshots": sorted(map(tuple, session.execute(select(*snapshots)))),
        "bucket_changes": sorted(map(tuple, session.execute(select(*changes)))),
        "events": list(map(tuple, session.execute(select(*events).order_by(Event.key)))),
        "statuses": sorted(map(tuple, session.execute(select(Loan.ref, Loan.status)))),
    }


def test_a_history_in_one_pass_records_what_the_runs_day_by_day_record(db_session, book):
    # loans disbursed between the days, one paid off early and held until its release, and an
    # earlier run of a day in the middle whose buckets the pass must start from
    factories.loan(db_session, "L-later", disbursed_on=date(2026, 3, 1))
    paid = factories.loan(db_session, "L-paid", principal=1_000_000, disbursed_on=date(2026, 2, 1))
    factories.pledge(db_session, paid)
    PaymentRepository(db_session).record(loan=paid, external_id="PAYOFF",
                                         paid_on=date(2026, 2, 20), amount=1_100_000)
    nightly(db_session, date(2026, 3, 25))
    days = [date(2026, 2, 15), date(2026, 3, 10), date(2026, 4, 1), date(2026, 4, 30),
            date(2026, 6, 2)]  # fmt: skip
    one_pass = db_session.begin_nested()
    counts = run_nightly_days(db_session, CATALOGUE, days=days)
    recorded = _recorded(db_session)
    one_pass.rollback()
    day_by_day = [nightly(db_session, day) for day in days]
    assert counts == day_by_day
    assert recorded == _recorded(db_session)
    assert {c.loans for c in counts} == {3, 4}  # L-later joins on 2026-03-10
    assert sum(c.bucket_changes for c in counts) > 0 and sum(c.status_changes for c in counts) > 0
    assert snapshot(db_session, "L-paid", date(2026, 6, 2)).status == "release-pending"


def test_a_history_in_one_pass_refuses_days_out_of_order(db_session, book):
    with pytest.raises(ValueError, match="days: must be in increasing order"):
        run_nightly_days(db_session, CATALOGUE, days=[date(2026, 3, 10), date(2026, 3, 10)])
    assert run_nightly_days(db_session, CATALOGUE, days=[]) == []
