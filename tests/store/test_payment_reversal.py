"""Reversing a stored payment (bounced), on SQLite and PostgreSQL: idempotent, and the next
nightly run is exactly what it would have been had the payment never arrived."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from lienwatch import clock
from lienwatch.cli import app
from lienwatch.domain.delinquency import LoanStatus
from lienwatch.errors import NotFoundError
from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.servicing.engine import loan_state
from lienwatch.servicing.product import LoanTerms, Payment
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.repositories import LoanRepository, PaymentRepository
from lienwatch.store.tables import BucketChange, LedgerEntry, Loan, LoanSnapshot
from lienwatch.store.tables import Payment as StoredPayment
from tests import factories

CATALOGUE = ProductCatalogue.from_tables({"default": {"grace_days": 3, "late_fee": "50.00"}})
BOUNCED_AT = datetime(2026, 4, 25, 9, 30, tzinfo=UTC)
PAYOFF_DAY = date(2026, 4, 20)
SNAPSHOT_FIELDS = (
    "dpd", "bucket", "status", "outstanding_principal", "overdue_principal", "overdue_interest",
    "penalty_accrued", "fees_due", "payoff", "credit", "next_due_on", "ead", "unsecured",
)  # fmt: skip


def _exact(loan: Loan, as_of: date):
    terms = LoanTerms(loan.ref, loan.principal, loan.annual_rate, loan.term_months,
                      loan.method, loan.disbursed_on)  # fmt: skip
    live = [Payment(p.external_id, p.paid_on, p.amount) for p in loan.payments
            if p.reversed_at is None]  # fmt: skip
    return loan_state(terms, CATALOGUE.get(loan.product), live, as_of)


def _snapshot(session, loan: Loan, as_of: date) -> tuple:
    row = session.scalars(
        select(LoanSnapshot).where(LoanSnapshot.loan_id == loan.id, LoanSnapshot.as_of == as_of)
    ).one()
    return tuple(getattr(row, name) for name in SNAPSHOT_FIELDS)


@pytest.fixture
def paid_off(db_session):
    """L-payoff pays installment 1, then its payoff quote on 2026-04-20; L-twin pays only
    installment 1 (what L-payoff looks like once the payoff bounces)."""
    loans = [factories.loan(db_session, ref) for ref in ("L-payoff", "L-twin")]
    payments = PaymentRepository(db_session)
    first = loans[0].installments[0]
    for loan in loans:
        payments.record(loan=loan, external_id=f"{loan.ref}-1", paid_on=first.due_date,
                        amount=first.principal + first.interest)  # fmt: skip
    quote = _exact(loans[0], PAYOFF_DAY).payoff_amount
    payments.record(loan=loans[0], external_id="PAYOFF", paid_on=PAYOFF_DAY, amount=quote)
    db_session.expire_all()
    return loans


def test_a_payoff_settles_and_its_reversal_replays_the_loan_without_it(db_session, paid_off):
    payoff, twin = paid_off
    run_nightly(db_session, CATALOGUE, as_of=date(2026, 4, 30))
    db_session.refresh(payoff)
    assert payoff.status == "settled"
    assert _snapshot(db_session, payoff, date(2026, 4, 30))[:3] == (0, "M0", "settled")

    payment, reversed_now = PaymentRepository(db_session).reverse(
        external_id="PAYOFF", reason="bounced: insufficient funds", at=BOUNCED_AT
    )
    assert reversed_now and payment.reversed_at == BOUNCED_AT
    run_nightly(db_session, CATALOGUE, as_of=date(2026, 5, 1))
    db_session.expire_all()
    after = _snapshot(db_session, payoff, date(2026, 5, 1))
    # exactly the loan that never received it, and the exact path without it
    assert after == _snapshot(db_session, twin, date(2026, 5, 1))
    exact = _exact(payoff, date(2026, 5, 1))
    assert after[:4] == (exact.dpd, exact.bucket, exact.status.value, exact.outstanding_principal)
    assert exact.status is LoanStatus.DELINQUENT and payoff.status == "delinquent"
    history = db_session.execute(
        select(BucketChange.changed_on, BucketChange.from_bucket, BucketChange.to_bucket)
        .where(BucketChange.loan_id == payoff.id).order_by(BucketChange.changed_on)
    ).all()  # fmt: skip
    assert [tuple(row) for row in history] == [
        (date(2026, 4, 30), None, "M0"), (date(2026, 5, 1), "M0", exact.bucket)
    ]


def test_reversal_is_idempotent_and_checks_its_input(db_session, paid_off):
    payments = PaymentRepository(db_session)
    payments.reverse(external_id="PAYOFF", reason="bounced", at=BOUNCED_AT)
    later = BOUNCED_AT + timedelta(days=1)
    again, reversed_now = payments.reverse(external_id="PAYOFF", reason="retry", at=later)
    assert not reversed_now
    assert (again.reversed_at, again.reversal_reason) == (BOUNCED_AT, "bounced")
    with pytest.raises(NotFoundError, match="'NOPE'"):
        payments.reverse(external_id="NOPE", reason="bounced", at=BOUNCED_AT)
    with pytest.raises(ValueError, match=r"^reason:"):
        payments.reverse(external_id="L-twin-1", reason="  ", at=BOUNCED_AT)
    with pytest.raises(ValueError, match=r"^at:"):
        payments.reverse(external_id="L-twin-1", reason="bounced", at=datetime(2026, 4, 25))


def test_an_operator_status_survives_the_run_and_a_derived_one_does_not(db_session, paid_off):
    twin = paid_off[1]
    loans = LoanRepository(db_session)
    loans.set_operator_status(twin, "repossessed")
    with pytest.raises(ValueError, match=r"^status:"):
        loans.set_operator_status(twin, "active")
    run_nightly(db_session, CATALOGUE, as_of=date(2026, 4, 30))
    db_session.refresh(twin)
    assert twin.status == "repossessed"
    loans.set_operator_status(twin, None)
    run_nightly(db_session, CATALOGUE, as_of=date(2026, 5, 1))
    db_session.refresh(twin)
    assert twin.status == "delinquent"


def test_payment_reverse_command(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with transaction(session_factory(engine)) as session:
        loan = factories.loan(session, "L-cli")
        PaymentRepository(session).record(loan=loan, external_id="BANK-9",
                                          paid_on=date(2026, 2, 15), amount=100_000)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIENWATCH_DATABASE_URL", url)
    runner = CliRunner()
    args = ["payment", "reverse", "BANK-9", "--reason", "bounced",
            "--at", "2026-02-20T10:00:00+08:00"]  # fmt: skip
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "BANK-9 of loan L-cli reversed" in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "already reversed" in second.output
    with session_factory(engine)() as session:
        stored = PaymentRepository(session).reverse(external_id="BANK-9", reason="x",
                                                    at=clock.now())[0]
        assert stored.reversed_at == datetime(2026, 2, 20, 10, tzinfo=timezone(timedelta(hours=8)))
        # The reversal is in the ledger, once (the second call changed nothing).
        [entry] = session.scalars(select(LedgerEntry.body)
                                  .where(LedgerEntry.kind == "payment_reversed")).all()  # fmt: skip
        fields = json.loads(entry)
        assert (fields["subject"], fields["data"]["payment"], fields["data"]["amount_fen"],
                fields["data"]["reason"]) == ("L-cli", "BANK-9", 100_000, "bounced")  # fmt: skip
    assert runner.invoke(app, ["payment", "reverse", "NOPE", "--reason", "x"]).exit_code == 1
    engine.dispose()


def test_payment_post_command_stores_who_paid(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with transaction(session_factory(engine)) as session:
        factories.loan(session, "L-post")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIENWATCH_DATABASE_URL", url)
    runner = CliRunner()
    args = ["payment", "post", "L-post", "--id", "BANK-10", "--paid-on", "2026-02-15",
            "--amount", "8745.00", "--channel", "transfer", "--payer-account",
            "6222888800002222", "--payer-name", "王芳", "--at", "2026-02-15T10:00:00+08:00",
            "--json"]  # fmt: skip
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    assert (data["amount_fen"], data["payer_account"], data["payer_name"], data["new"]) == (
        874_500, "6222888800002222", "王芳", True)
    assert json.loads(runner.invoke(app, args).output)["new"] is False  # the same payment again
    long = runner.invoke(app, [*args[:11], "--payer-account", "6" * 65])
    assert long.exit_code == 2 and "--payer-account" in long.output
    with session_factory(engine)() as session:
        stored = session.scalar(select(StoredPayment).where(StoredPayment.external_id == "BANK-10"))
        assert (stored.payer_account, stored.payer_name, stored.channel) == (
            "6222888800002222", "王芳", "transfer")
        # the payer stays out of the ledger (a name could never be erased from it)
        [entry] = session.scalars(select(LedgerEntry.body)
                                  .where(LedgerEntry.kind == "payment_posted")).all()  # fmt: skip
        assert "王芳" not in entry and "6222888800002222" not in entry
    engine.dispose()
