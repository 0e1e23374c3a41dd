"""The report's models section on a small book of both backends: grades against outcome,
the grade mix's PSI, the behaviour score or why not, abnormal payments, rings."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from lienwatch.reports.daily import day_folder, written_figures
from lienwatch.reports.models import models_figures
from lienwatch.services.applications import shipped_reference, shipped_scorecard
from lienwatch.services.origination import (
    BOOKED,
    THROUGH_THE_DOOR,
    Scored,
    record_scored,
    scorecard_id,
    scorecard_stability,
)
from lienwatch.services.payment_anomalies import scan_payments
from lienwatch.services.reads.portfolio import grades_against_outcome
from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.repositories import PaymentRepository
from tests import factories

DAY = date(2026, 11, 30)
AT = datetime(2026, 12, 1, 2, tzinfo=UTC)


def test_the_models_section_reads_grades_outcomes_anomalies_and_rings(db_session):
    """Four graded loans: an old A that paid, an old E that never paid (defaulted), a new A
    and a new B; every factory borrower shares one phone, so they form one ring."""
    loans = {}
    for ref, grade, disbursed in (("M1", "A", date(2026, 1, 15)), ("M2", "E", date(2026, 1, 15)),
                                  ("M3", "A", date(2026, 10, 15)), ("M4", "B", date(2026, 10, 15))):
        loan = factories.loan(db_session, ref, disbursed_on=disbursed)
        loan.grade, loan.score = grade, 600
        loans[ref] = loan
    payments = PaymentRepository(db_session)
    for n, due in enumerate(i.due_date for i in loans["M1"].installments):
        if due <= DAY:
            payments.record(loan=loans["M1"], external_id=f"M1-{n}", paid_on=due, amount=874_490)
    payments.record(loan=loans["M1"], external_id="M1-cash", paid_on=DAY, amount=2_000_000,
                    channel="cash")  # fmt: skip
    run_nightly(db_session, ProductCatalogue(), as_of=DAY)
    scan_payments(db_session, since=DAY, through=DAY, at=AT)
    figures = models_figures(db_session, day=DAY, since=None, at=AT)
    assert [(r["grade"], r["loans"], r["defaulted"]) for r in figures["grades"]] == [
        ("A", 2, 0), ("B", 1, 0), ("E", 1, 1)]
    assert figures["grades"][2]["default_rate"] == 1.0
    stability = figures["stability"]
    assert stability["reference"] == {"A": 1, "B": 0, "C": 0, "D": 0, "E": 1}
    assert stability["recent"] == {"A": 1, "B": 1, "C": 0, "D": 0, "E": 0}
    assert stability["psi"] > 0.25  # a new book of another mix
    behaviour = figures["behaviour"]
    assert (behaviour["available"], behaviour["reason"]) == (False, "few_months")
    assert "the book has" in behaviour["why"] and isinstance(behaviour["months"], list)
    assert figures["payment_anomalies"] == {"open": 1, "new": 1}
    assert (figures["rings"]["candidate_rings"], figures["rings"]["borrowers"]) == (1, 4)
    assert grades_against_outcome(db_session, date(2026, 2, 1))[0]["loans"] == 1  # M3 not yet
    assert "changes" not in figures  # the first report compares with nothing


def test_the_models_section_says_what_changed_since_the_previous_report(db_session):
    """The rings and the behaviour score's AUC of the previous report's day, computed the
    same way: the borrowers of the loans disbursed by then (all share the factories' phone)."""
    for ref, disbursed in (("R1", date(2026, 1, 15)), ("R2", date(2026, 1, 15)),
                           ("R3", date(2026, 10, 15))):  # fmt: skip
        factories.loan(db_session, ref, disbursed_on=disbursed)
    run_nightly(db_session, ProductCatalogue(), as_of=DAY)
    changes = {previous: models_figures(db_session, day=DAY, since=None, at=AT,
                                        previous_day=previous)["changes"]
               for previous in (date(2026, 1, 1), date(2026, 2, 1))}  # fmt: skip
    assert changes[date(2026, 1, 1)] == {"candidate_rings": 1, "ring_borrowers": 3, "auc": None}
    assert changes[date(2026, 2, 1)] == {"candidate_rings": 0, "ring_borrowers": 1, "auc": None}


def test_the_changes_read_the_previous_report_s_figures_when_it_was_written(
    db_session, tmp_path
):
    """The previous report's figures.json, where written, gives the changes: the same as
    computing them again, without the work; a report of another day, or none, is computed."""
    for ref, disbursed in (("R1", date(2026, 1, 15)), ("R2", date(2026, 1, 15)),
                           ("R3", date(2026, 10, 15))):  # fmt: skip
        factories.loan(db_session, ref, disbursed_on=disbursed)
    run_nightly(db_session, ProductCatalogue(), as_of=DAY)
    before = date(2026, 2, 1)
    was = models_figures(db_session, day=before, since=None, at=AT)
    computed = models_figures(db_session, day=DAY, since=None, at=AT, previous_day=before)
    read = models_figures(db_session, day=DAY, since=None, at=AT, previous_day=before,
                          previous=was)  # fmt: skip
    assert read["changes"] == computed["changes"] == {
        "candidate_rings": 0, "ring_borrowers": 1, "auc": None}
    assert read["stability"]["change"] == computed["stability"]["change"]
    # what the written report says is what is compared with (not computed again)
    told = {**was, "rings": {"candidate_rings": 4, "borrowers": 11},
            "behaviour": {"available": True, "auc": 0.7}}
    changes = models_figures(db_session, day=DAY, since=None, at=AT, previous_day=before,
                             previous=told)["changes"]  # fmt: skip
    assert changes == {"candidate_rings": -3, "ring_borrowers": -8, "auc": None}
    # the reader of written reports: the day's own figures only
    dated = written_figures(tmp_path, dated=True)
    folder = day_folder(tmp_path, before)
    folder.mkdir()
    assert dated(before) is None  # none written
    (folder / "figures.json").write_text(json.dumps({"as_of": "2026-02-01", "models": was}))
    assert dated(before) == {"as_of": "2026-02-01", "models": was}
    (folder / "figures.json").write_text("{not json")
    assert dated(before) is None
    (tmp_path / "figures.json").write_text(json.dumps({"as_of": "2026-01-31", "models": was}))
    assert written_figures(tmp_path, dated=False)(before) is None  # another day's report
    assert written_figures(tmp_path, dated=False)(date(2026, 1, 31))["as_of"] == "2026-01-31"


def test_the_scorecard_s_stability_against_its_fit(db_session):
    """Applications stored with their attributes: the score's and each characteristic's PSI
    of those decided in the last 90 days against the fit, and the change since the previous
    report's day; an application of another month is outside the window."""
    card, reference = shipped_scorecard(), shipped_reference()
    duration = next(c for c in card.characteristics if c.name == "duration_in_month")
    typical = {c.name: c.binning.bins[0].label for c in card.characteristics}
    at = datetime(2026, 11, 30, 9, tzinfo=UTC)
    card_id = scorecard_id(db_session, card, reference, at=at)
    assert scorecard_id(db_session, card, reference, at=at) == card_id  # stored once
    scored = [Scored(f"R{k}", at, date(2026, 11, 1 + k % 28), 520 + k, "C", "approve",
                     {**typical, "duration_in_month": duration.binning.bins[-2].label})
              for k in range(40)]  # fmt: skip
    scored.append(Scored("OLD", at, date(2026, 1, 5), 600, "A", "approve", typical))
    assert record_scored(db_session, card_id, scored) == 41
    figures = models_figures(db_session, day=DAY, since=None, at=AT,
                             previous_day=date(2026, 11, 20))
    found = figures["scorecard"]
    assert (found["applications"], found["since"]) == (40, "2026-09-01")
    assert found["reference_rows"] == 1000 == sum(b["reference"] for b in found["score"]["bins"])
    assert sum(b["actual"] for b in found["score"]["bins"]) == 40
    by_name = {c["name"]: c for c in found["characteristics"]}
    assert set(by_name) == set(card.names)
    assert [b["reference"] for b in by_name["duration_in_month"]["bins"]] == [
        b.count for b in duration.binning.bins]
    assert by_name["duration_in_month"]["psi"] > 0.25  # all in one bin of the fit's few
    assert found["score"]["psi"] > 0.25  # scores 520-559 only
    earlier = scorecard_stability(db_session, day=date(2026, 11, 20))
    assert earlier["applications"] == 32 and found["applications_change"] == 8  # 21st-28th
    assert found["score"]["change"] == round(found["score"]["psi"] - earlier["score"]["psi"], 4)
    assert scorecard_stability(db_session, day=date(2025, 1, 1)) is None


def test_the_scorecard_is_watched_on_its_through_the_door_applications(db_session):
    """Approved, referred and declined applications are the population; booked loans scored
    after the fact (no decision) are not mixed in; a scorecard that decided none is watched
    on its booked loans, and says so."""
    card, reference = shipped_scorecard(), shipped_reference()
    typical = {c.name: c.binning.bins[0].label for c in card.characteristics}
    at = datetime(2026, 11, 30, 9, tzinfo=UTC)
    card_id = scorecard_id(db_session, card, reference, at=at)
    booked = [Scored(f"B{k}", at, date(2026, 11, 2), 600, "A", None, typical) for k in range(5)]
    record_scored(db_session, card_id, booked)
    only_booked = scorecard_stability(db_session, day=DAY)
    assert (only_booked["population"], only_booked["applications"]) == (BOOKED, 5)
    door = [Scored(f"D{k}", at, date(2026, 11, 3), 500 + k, "C", decision, typical)
            for k, decision in enumerate(("approve", "refer", "decline", "decline"))]  # fmt: skip
    record_scored(db_session, card_id, door)
    found = scorecard_stability(db_session, day=DAY)
    assert (found["population"], found["applications"]) == (THROUGH_THE_DOOR, 4)
    assert sum(b["actual"] for b in found["score"]["bins"]) == 4
