"""Abnormal payments in the book become ``payment_anomaly`` alerts with their evidence, once,
and enter the follow-up engine on its own ladder; the nightly job runs the scan."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from lienwatch import clock
from lienwatch.config import Settings
from lienwatch.jobs import nightly_run, tick_and_drain
from lienwatch.services.payment_anomalies import payment_review, scan_payments
from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.repositories import PaymentRepository
from lienwatch.store.tables import Alert, Installment, Payment, Trigger
from tests import factories
from tests.services.test_followup_engine import service
from tests.test_cli import run

DISBURSED = date(2026, 6, 15)
AT = datetime.fromisoformat("2026-12-01T02:00:00+00:00")


def _book(session, ref: str = "PA1"):
    """A loan that paid its first five installments on their due dates by debit."""
    loan = factories.loan(session, ref, disbursed_on=DISBURSED)
    payments = PaymentRepository(session)
    for row in session.scalars(select(Installment).where(Installment.loan_id == loan.id,
                                                         Installment.n <= 5)):  # fmt: skip
        payments.record(loan=loan, external_id=f"{ref}-{row.n}", paid_on=row.due_date,
                        amount=row.principal + row.interest)  # fmt: skip
    return loan, payments


def test_a_round_cash_sum_is_an_alert_with_its_rule_and_payment_raised_once(db_session):
    loan, payments = _book(db_session)
    payments.record(loan=loan, external_id="PA1-cash", paid_on=date(2026, 11, 20),
                    amount=1_000_000, channel="cash")  # fmt: skip
    day = date(2026, 11, 20)
    earlier = day - timedelta(days=1)
    assert (
        scan_payments(db_session, since=earlier - timedelta(days=30), through=earlier, at=AT) == []
    )  # the ordinary installments: nothing
    [alert] = scan_payments(db_session, since=day, through=day, at=AT)
    assert (alert.type, alert.status, alert.loan_id, alert.vehicle_id, alert.key) == (
        "payment_anomaly",
        "open",
        loan.id,
        loan.vehicle_id,
        "payment_anomaly:PA1-cash",
    )
    assert alert.evidence["rule"] == "payment_anomaly"
    assert alert.evidence["rules"] == ["CHANNEL_CHANGE", "ROUND_SUM"]
    assert alert.evidence["payments"] == [{
        "payment": "PA1-cash", "paid_on": "2026-11-20", "amount_fen": 1_000_000,
        "channel": "cash", "rules": ["ROUND_SUM", "CHANNEL_CHANGE"]}]  # fmt: skip
    assert alert.evidence["thresholds"]["round_unit"] == 100_000
    assert scan_payments(db_session, since=day, through=day, at=AT) == []  # rerun: nothing new
    # A later split installment extends the loan's open alert.
    second = db_session.scalar(select(Installment).where(Installment.loan_id == loan.id,
                                                         Installment.n == 2))  # fmt: skip
    for part in range(3):
        payments.record(loan=loan, external_id=f"PA1-split-{part}", paid_on=date(2026, 11, 25),
                        amount=(second.principal + second.interest) // 3)  # fmt: skip
    [again] = scan_payments(db_session, since=date(2026, 11, 25), through=date(2026, 11, 25),
                            at=AT + timedelta(days=5))  # fmt: skip
    assert again.id == alert.id and again.repeats == 1
    assert [p["payment"] for p in again.evidence["payments"]] == [
        "PA1-cash",
        "PA1-split-0",
        "PA1-split-1",
        "PA1-split-2",
    ]
    assert "SPLIT_PAYMENT" in again.evidence["rules"]


def test_a_window_ending_before_it_starts_is_refused(db_session):
    with pytest.raises(ValueError, match="since: 2026-11-21 is after through 2026-11-20"):
        scan_payments(db_session, since=date(2026, 11, 21), through=date(2026, 11, 20), at=AT)


def test_the_alert_enters_the_follow_up_engine_on_the_payment_anomaly_ladder(db_session):
    loan, payments = _book(db_session, "PA2")
    engine, _ = service(db_session)
    engine.tick(at=AT)
    payments.record(loan=loan, external_id="PA2-cash", paid_on=date(2026, 11, 30),
                    amount=2_000_000, channel="cash")  # fmt: skip
    [alert] = scan_payments(db_session, since=date(2026, 11, 30), through=date(2026, 11, 30),
                            at=AT + timedelta(hours=1))  # fmt: skip
    engine.tick(at=AT + timedelta(hours=1))
    trigger = db_session.scalar(select(Trigger).where(Trigger.alert_id == alert.id))
    assert (trigger.kind, trigger.alert_id, trigger.ladder) == (
        "payment_anomaly",
        alert.id,
        "payment-anomaly",
    )


def test_the_nightly_job_scans_the_days_it_ran_and_raises_their_follow_ups(store_url, tmp_path):
    """At TEST_NOW the job catches up 2026-11-29 and 30 (the engine has worked the book since
    the 28th): the round sum paid on the 30th is an alert whose trigger is raised at once."""
    settings = Settings(database_url=store_url, ledger={"key_file": tmp_path / "ledger.key"})
    factory = session_factory(make_engine(store_url))
    with transaction(factory) as session:
        loan, payments = _book(session, "PA3")
        payments.record(loan=loan, external_id="PA3-cash", paid_on=date(2026, 11, 30),
                        amount=3_000_000, channel="cash")  # fmt: skip
        factories.loan_fallen_due(session, "PA3-late", today=date(2026, 11, 28))
        run_nightly(session, ProductCatalogue(), as_of=date(2026, 11, 28))
    tick_and_drain(factory, settings, catalogue=ProductCatalogue(), at=clock.now())
    summary = nightly_run(factory, settings)()
    assert summary["days"] == ["2026-11-29", "2026-11-30"]
    assert (summary["payment_anomalies"], summary["payment_anomalies_followed"]) == (1, 1)
    # the month's behaviour refit runs with its first nightly run (this book is too young to
    # fit, and says so), and not again that month
    refit = summary["behaviour_refit"]
    assert refit["month"] == "2026-11" and "known 60-day outcome" in refit["unfitted"]
    assert nightly_run(factory, settings)()["behaviour_refit"] is None
    with factory() as session:
        alert = session.scalar(select(Alert).where(Alert.type == "payment_anomaly"))
        trigger = session.scalar(select(Trigger).where(Trigger.alert_id == alert.id))
        assert [p["payment"] for p in alert.evidence["payments"]] == ["PA3-cash"]
        assert (trigger.kind, trigger.ladder) == ("payment_anomaly", "payment-anomaly")


def test_payers_stored_with_payments_fire_the_payer_rules(db_session):
    """The borrower's own account under their own name is never flagged; a relative's account
    is PAYER_NOT_BORROWER; one broker account paying for three borrowers is SHARED_PAYER."""
    day = date(2026, 11, 20)
    loans = {}
    for k in range(3):
        loan, payments = _book(db_session, f"PB{k}")
        loans[k] = loan
        for row in db_session.scalars(select(Installment).where(
                Installment.loan_id == loan.id, Installment.n <= 5)):  # fmt: skip
            payment = db_session.scalar(select(Payment).where(
                Payment.external_id == f"PB{k}-{row.n}"))  # fmt: skip
            payment.payer_account, payment.payer_name = f"62220000000000000{k}", " 王 伟"
        payments.record(loan=loan, external_id=f"PB{k}-broker", paid_on=day, amount=318_000,
                        payer_account="6222999900001111", payer_name="车贷服务部001")  # fmt: skip
    relative = loans[0]
    PaymentRepository(db_session).record(
        loan=relative, external_id="PB0-relative", paid_on=day + timedelta(days=1),
        amount=318_000, payer_account="6222888800002222", payer_name="王芳")  # fmt: skip
    earlier = day - timedelta(days=1)
    assert scan_payments(db_session, since=DISBURSED, through=earlier, at=AT) == []  # own names
    alerts = scan_payments(db_session, since=day, through=day + timedelta(days=1), at=AT)
    assert sorted(a.loan_id for a in alerts) == sorted(loan.id for loan in loans.values())
    evidence = {p["payment"]: p for a in alerts for p in a.evidence["payments"]}
    for k in range(3):
        broker = evidence[f"PB{k}-broker"]
        assert {"SHARED_PAYER", "PAYER_NOT_BORROWER"} <= set(broker["rules"])
        assert (broker["payer_account"], broker["details"]["payer_borrowers"]) == (
            "6222999900001111", "3")
    assert "PAYER_NOT_BORROWER" in evidence["PB0-relative"]["rules"]
    assert "SHARED_PAYER" not in evidence["PB0-relative"]["rules"]
    assert evidence["PB0-relative"]["payer_name"] == "王芳"


def test_the_review_lists_the_strangest_payments_of_the_window_with_their_features(db_session):
    for ref in ("PR1", "PR2", "PR3"):
        _book(db_session, ref)
    loan, payments = _book(db_session, "PR4")
    payments.record(loan=loan, external_id="PR4-odd", paid_on=date(2026, 11, 2),
                    amount=4_990_000, channel="cash", payer_account="6222000011112222",
                    payer_name="Someone Else")  # fmt: skip
    day = date(2026, 11, 30)
    found = payment_review(db_session, as_of=day, days=200, top=3, seed=0)
    assert found["payments"] == 21 and len(found["top"]) == 3
    [first, *_] = found["top"]
    assert (first["payment"], first["loan"], first["alerted"]) == ("PR4-odd", "PR4", False)
    assert first["features"]["payer_not_borrower"] == 1.0
    assert first["features"]["log_amount_over_installment"] > 1  # 49,900 yuan, ~8,700 due
    assert "payer_account" not in first and "payer_name" not in first  # ids only, no payer
    assert [row["score"] for row in found["top"]] == sorted(
        (row["score"] for row in found["top"]), reverse=True)
    assert payment_review(db_session, as_of=day, days=200, top=3, seed=0) == found  # seeded
    # once a rule raised it, the review says so
    scan_payments(db_session, since=date(2026, 11, 2), through=date(2026, 11, 2), at=AT)
    assert payment_review(db_session, as_of=day, days=200, top=1)["top"][0]["alerted"] is True
    # the window is the days up to the day: the odd payment is older than 20 days
    recent = payment_review(db_session, as_of=day, days=20, top=5)
    assert recent["payments"] == 4 and "PR4-odd" not in {r["payment"] for r in recent["top"]}
    assert payment_review(db_session, as_of=date(2026, 6, 1), days=20)["top"] == []
    with pytest.raises(ValueError, match="days"):
        payment_review(db_session, as_of=day, days=0)


def test_the_review_command_prints_the_top_payments(store_url, tmp_path):
    engine = make_engine(store_url)
    with transaction(session_factory(engine)) as session:
        loan, payments = _book(session)
        payments.record(loan=loan, external_id="PA1-cash", paid_on=date(2026, 11, 20),
                        amount=1_000_000, channel="cash")  # fmt: skip
    engine.dispose()
    env = {"LIENWATCH_DATABASE_URL": store_url}
    out = run("risk", "payments", "--as-of", "2026-11-30", "--days", "365", "--top", "2",
              "--json", cwd=tmp_path, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert found["payments"] == 6 and found["top"][0]["payment"] == "PA1-cash"
    text = run("risk", "payments", "--as-of", "2026-11-30", "--days", "365", "--top", "1",
               cwd=tmp_path, env=env)  # fmt: skip
    assert "6 payments paid in the 365 days to 2026-11-30" in text.stdout
    assert "PA1-cash loan PA1 2026-11-20 10000.00 cash" in text.stdout


def _imported_history(session, folder, *, with_times: bool):
    """A simulated book imported by a night batch at 02:00 Beijing time; with ``with_times``
    its payments file carries each payment's time (14:xx local, the borrowers' habit)."""
    from lienwatch.services.book_import import import_book
    from lienwatch.sim import SimConfig, generate, write_portfolio

    portfolio = generate(SimConfig(loans=6, days=14, seed=3))
    paths = write_portfolio(portfolio, folder, positions=False)
    if with_times:
        lines = paths["payments"].read_text(encoding="utf-8").splitlines()
        timed = [lines[0] + ",paid_at"] + [
            f"{line},{line.split(',')[2]}T14:{k % 60:02d}:00+08:00"
            for k, line in enumerate(lines[1:])
        ]
        paths["payments"].write_text("\n".join(timed) + "\n", encoding="utf-8")
    night = datetime.fromisoformat(f"{portfolio.as_of}T02:00:00+08:00")
    with clock.travel(night):
        import_book(session, {k: paths[k] for k in
                              ("borrowers", "vehicles", "devices", "loans", "payments")},
                    at=night)  # fmt: skip
    return portfolio, night


@pytest.mark.parametrize("with_times", [False, True])
def test_an_imported_history_gives_no_hour_to_judge_live_payments_by(db_session, tmp_path,
                                                                       with_times):  # fmt: skip
    """Imported payments whose file gives only the value date have no hour: a live payment
    posted at 14:00 is not "at an unusual hour" against the 02:00 of the night the history
    was imported. With the file's ``paid_at`` the history's hours are the borrowers' own, and
    a payment twelve hours off theirs is flagged."""
    from collections import Counter

    from lienwatch.risk.payments import PaymentLimits
    from lienwatch.services.payments import post_payment
    from lienwatch.store.tables import Loan

    portfolio, night = _imported_history(db_session, tmp_path, with_times=with_times)
    refs = Counter(p.loan_ref for p in portfolio.payments)
    ref, paid = max(refs.items(), key=lambda item: (item[1], item[0]))
    assert paid >= PaymentLimits().history_min  # a history to judge the hour by
    loan = db_session.scalar(select(Loan).where(Loan.ref == ref))
    day = night.date() + timedelta(days=1)
    hour = 2 if with_times else 14  # local: off the file's 14:xx, or off the import's 02:00
    moment = datetime.fromisoformat(f"{day}T{hour:02d}:30:00+08:00")
    with clock.travel(moment):
        post_payment(db_session, loan=loan, external_id="live-1", paid_on=day, amount=100_00,
                     channel="bank_debit", by=None, at=moment)  # fmt: skip
    alerts = scan_payments(db_session, since=day, through=day, at=moment)
    rules = {rule for alert in alerts for rule in alert.evidence["rules"]}
    assert ("TIME_CHANGE" in rules) is with_times
    stored = db_session.scalars(select(Payment).where(Payment.external_id != "live-1")).all()
    assert stored and all((p.paid_at is not None) is with_times for p in stored)
    if with_times:
        assert {p.paid_at.astimezone(moment.tzinfo).hour for p in stored} == {14}


def test_a_payment_posted_at_a_time_has_that_moment(db_session):
    """``post_payment``'s ``at`` (the CLI's ``--at``, the API's clock) is the payment's
    moment, whatever the clock says: the hour rule reads the time the caller gave."""
    from lienwatch.services.payments import post_payment

    loan, _ = _book(db_session)
    posted = datetime.fromisoformat("2026-11-20T15:45:00+08:00")
    with clock.travel(datetime.fromisoformat("2026-11-21T03:00:00+08:00")):
        payment, new = post_payment(db_session, loan=loan, external_id="PA1-at",
                                    paid_on=date(2026, 11, 20), amount=100_00,
                                    channel="bank_debit", by=None, at=posted)  # fmt: skip
    assert new and payment.paid_at == posted and payment.received_at == posted
