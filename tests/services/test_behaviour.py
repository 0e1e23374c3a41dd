"""The behaviour score's observations from the book (snapshots, payments, alerts) and its
time-split backtest, on both backends."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, update

from lienwatch.adapters.senders import LogProvider
from lienwatch.errors import NotFoundError
from lienwatch.followup.assignment import priority
from lienwatch.followup.channels import Dispatcher
from lienwatch.followup.compliance import ComplianceGuard
from lienwatch.followup.model import Channel
from lienwatch.followup.strategy import parse_strategy, strategy_document
from lienwatch.risk.behaviour import FEATURES, BehaviourError
from lienwatch.services.behaviour import (
    behaviour_backtest,
    behaviour_observations,
    fit_behaviour_score,
    fit_in_force,
    month_ends,
    opening_scores,
    publish_behaviour_fit,
    refit_if_due,
)
from lienwatch.services.followup import FollowupService
from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.repositories import PaymentRepository
from lienwatch.store.tables import (
    Alert,
    AuditEntry,
    BehaviourFit,
    Case,
    Installment,
    Loan,
    LoanSnapshot,
    Task,
    User,
)
from tests import factories
from tests.test_cli import run

MONTH_ENDS = [date(2026, 7, 31), date(2026, 8, 31), date(2026, 9, 30), date(2026, 10, 31),
              date(2026, 11, 30)]  # fmt: skip
THROUGH = date(2026, 11, 30)


def _book(session) -> dict[str, int]:
    """Loans disbursed on 15 June: six pay every installment; three stop paying at their
    first, second and third installment (then roll to M2 a month later). One good payer
    paid its August installment in two parts and has a night relocation open since 20 July."""
    stops = {f"G{k}": 99 for k in range(6)} | {"S1": 1, "S2": 2, "S3": 3}
    ids = {}
    payments = PaymentRepository(session)
    for ref, stop in stops.items():
        loan = factories.loan(session, ref, disbursed_on=date(2026, 6, 15))
        ids[ref] = loan.id
        for row in session.scalars(select(Installment).where(Installment.loan_id == loan.id)):
            if row.n < stop and row.due_date <= THROUGH:
                due = row.principal + row.interest
                parts = [due // 2, due - due // 2] if (ref, row.n) == ("G0", 2) else [due]
                for k, amount in enumerate(parts):
                    day = row.due_date.replace(day=row.due_date.day + k * 3)
                    payments.record(loan=loan, external_id=f"{ref}-{row.n}-{k}", paid_on=day,
                                    amount=amount)  # fmt: skip
    g0 = session.get_one(type(loan), ids["G0"])
    session.add(Alert(type="night_relocation", severity="warning", status="open",
                      vehicle_id=g0.vehicle_id, loan_id=g0.id,
                      started_at=datetime(2026, 7, 20, tzinfo=UTC), evidence={}))  # fmt: skip
    for day in MONTH_ENDS:
        run_nightly(session, ProductCatalogue(), as_of=day)
    return ids


def test_observations_are_month_ends_with_a_known_horizon_and_their_signals(db_session):
    ids = _book(db_session)
    assert month_ends(db_session, through=THROUGH) == MONTH_ENDS
    obs = behaviour_observations(db_session, through=THROUGH)
    assert sorted(set(obs.month)) == ["2026-07", "2026-08", "2026-09"]  # Oct + 60 d is later
    # a later day without nightly runs knows no more outcomes
    later = behaviour_observations(db_session, through=date(2027, 1, 31))
    assert sorted(set(later.month)) == sorted(set(obs.month)) and len(later) == len(obs)
    row = {(loan, month): k for k, (loan, month) in enumerate(zip(obs.loan, obs.month,
                                                                 strict=True))}  # fmt: skip
    rolled = {key for key, k in row.items() if obs.rolled[k]}
    assert rolled == {(str(ids["S1"]), "2026-07"), (str(ids["S2"]), "2026-08"),
                      (str(ids["S3"]), "2026-09")}  # fmt: skip
    assert (str(ids["S1"]), "2026-08") not in row  # already M2: not an observation
    g0_aug = dict(zip(FEATURES, obs.features[row[(str(ids["G0"]), "2026-08")]], strict=True))
    assert g0_aug["partial_payments_3m"] == 2 and g0_aug["night_relocation"] == 1
    assert g0_aug["open_alerts"] == 1 and g0_aug["tracker_removed"] == 0
    s2_aug = dict(zip(FEATURES, obs.features[row[(str(ids["S2"]), "2026-08")]], strict=True))
    assert s2_aug["dpd"] == 16 and s2_aug["max_dpd_6m"] == 0


def test_offline_hours_count_what_the_monitor_knew_by_each_month_end(db_session):
    ids = _book(db_session)
    loans = {ref: db_session.get_one(Loan, ids[ref]) for ref in ("G1", "G2")}

    def offline(ref: str, started: datetime, raised: datetime, ended: datetime | None) -> None:
        db_session.add(Alert(type="device_offline", severity="warning", status="open",
                             vehicle_id=loans[ref].vehicle_id, loan_id=loans[ref].id,
                             started_at=started, raised_at=raised, ended_at=ended,
                             evidence={}))  # fmt: skip

    # G1 offline from 20 August to 2 September; G2 silent from 29 August, raised on
    # 3 September (the monitor learnt it then) and still open
    offline("G1", datetime(2026, 8, 20, tzinfo=UTC), datetime(2026, 8, 20, tzinfo=UTC),
            datetime(2026, 9, 2, tzinfo=UTC))
    offline("G2", datetime(2026, 8, 29, tzinfo=UTC), datetime(2026, 9, 3, tzinfo=UTC), None)
    db_session.flush()
    obs = behaviour_observations(db_session, through=THROUGH)

    def feature(ref: str, month: str, name: str) -> float:
        k = next(k for k, (loan, m) in enumerate(zip(obs.loan, obs.month, strict=True))
                 if (loan, m) == (str(ids[ref]), month))  # fmt: skip
        value = float(obs.features[k, FEATURES.index(name)])
        return round(math.expm1(value), 6) if name == "log_offline_hours_3m" else value

    # up to the end of 31 August: 12 days; at the end of September the whole 13 days
    assert feature("G1", "2026-08", "log_offline_hours_3m") == 12 * 24
    assert feature("G1", "2026-09", "log_offline_hours_3m") == 13 * 24
    assert feature("G1", "2026-09", "tracker_offline") == 0  # ended by then
    # not known on 31 August (no look-ahead); on 30 September, from its start to then
    assert feature("G2", "2026-08", "log_offline_hours_3m") == 0
    assert feature("G2", "2026-08", "tracker_offline") == 0
    assert feature("G2", "2026-09", "log_offline_hours_3m") == 33 * 24
    assert feature("G2", "2026-09", "tracker_offline") == 1
    assert feature("G3", "2026-09", "log_offline_hours_3m") == 0


def test_the_backtest_fits_on_earlier_months_and_judges_the_last(db_session):
    _book(db_session)
    result = behaviour_backtest(db_session, through=THROUGH, capacity=0.2)
    assert result["fit_months"] == ["2026-07", "2026-08"] and result["test_months"] == ["2026-09"]
    assert result["rolled"] == 1 and result["auc"] == 1.0  # S3, the only one past due
    duel = result["champion_challenger"]
    assert (duel["champion"]["total"], duel["challenger"]["hits"]) == (1, 1)
    assert duel["ci"][0] is not None and duel["ci"][0] <= duel["difference"] <= duel["ci"][1]


def test_a_book_without_known_outcomes_says_so(db_session):
    _book(db_session)
    with pytest.raises(BehaviourError, match=r"has 0$"):
        behaviour_backtest(db_session, through=date(2026, 9, 1))


def test_the_command_prints_the_backtest_of_the_configured_book(store_url, tmp_path):
    engine = make_engine(store_url)
    with transaction(session_factory(engine)) as session:
        _book(session)
    engine.dispose()
    env = {"LIENWATCH_DATABASE_URL": store_url}
    result = run("risk", "behaviour", "--as-of", "2026-11-30", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert (figures["test_months"], figures["auc"], figures["rolled"]) == (["2026-09"], 1.0, 1)
    text = run("risk", "behaviour", "--as-of", "2026-11-30", cwd=tmp_path, env=env)
    assert (
        "judged on 2026-09 (" in text.stdout and "challenger (score x exposure) 1/1" in text.stdout
    )
    early = run("risk", "behaviour", "--as-of", "2026-09-01", cwd=tmp_path, env=env)
    assert early.returncode != 0 and "the book has 0" in early.stderr
    saved = run("risk", "behaviour", "--as-of", "2026-11-30", "--save", cwd=tmp_path, env=env)
    assert saved.returncode == 0, saved.stderr
    assert ("saved fit 1 on 2026-07, 2026-08, 2026-09 unpublished: once an analyst publishes it"
            in saved.stdout)


def test_a_stored_fit_scores_the_cases_opened_after_it_from_the_day_before(db_session):
    ids = _book(db_session)
    at = datetime(2026, 12, 1, 1, tzinfo=UTC)
    fit = fit_behaviour_score(db_session, through=THROUGH, at=at)
    assert fit.figures["months"] == ["2026-07", "2026-08", "2026-09"]
    assert fit.figures["test_months"] == ["2026-09"] and fit.figures["auc"] == 1.0
    assert [row["name"] for row in fit.model["features"]] == list(FEATURES)
    # stored unpublished, it scores nothing
    assert fit.published_at is None and fit_in_force(db_session, day=date(2026, 12, 1)) is None
    assert opening_scores(db_session, list(ids.values()), day=date(2026, 12, 1)) == {}
    publish_behaviour_fit(db_session, fit_id=fit.id, by="nia", at=at)
    assert (fit.published_by, fit.published_at) == ("nia", at)
    # data before the day only: a case opening on the fit's last day does not get it
    assert fit_in_force(db_session, day=THROUGH) is None
    assert fit_in_force(db_session, day=date(2026, 12, 1)).id == fit.id
    scores = opening_scores(db_session, list(ids.values()), day=date(2026, 12, 1))
    assert set(scores) == set(ids.values()) and all(0 <= p <= 1 for p in scores.values())
    assert min(scores[ids[f"S{k}"]] for k in (1, 2, 3)) > max(scores[ids[f"G{k}"]]
                                                              for k in range(6))  # fmt: skip
    assert opening_scores(db_session, list(ids.values()), day=THROUGH) == {}


def test_the_challenger_arm_orders_its_tasks_by_the_score_at_opening(db_session):
    ids = _book(db_session)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    fit = fit_behaviour_score(db_session, through=THROUGH, at=at)
    publish_behaviour_fit(db_session, fit_id=fit.id, by="nia", at=at)
    db_session.execute(update(LoanSnapshot).values(unsecured=5_000_000))
    db_session.add(User(username="ann", display_name="Ann", role="agent", team="east",
                        skills={"mode": "phone"}, daily_capacity=60))  # fmt: skip
    guard = ComplianceGuard("cn")
    logged = LogProvider()
    # the demo's analyst's version: the shipped ladders, the challenger ordering by the score
    strategy = parse_strategy({**strategy_document("cn"), "challenger": {
        "name": "behaviour-priority", "split": 0.5, "priority": "behaviour"}}, source="test")
    engine = FollowupService(
        db_session, strategy=strategy, catalogue=ProductCatalogue(),
        dispatcher=Dispatcher(guard, {Channel.SMS: logged, Channel.VOICE: logged,
                                      Channel.LETTER: logged}),
    )  # fmt: skip
    for hour in range(1, 9):  # 09:00 to 16:00 in Shanghai on 2 December: the backlog's steps
        engine.tick(at=datetime(2026, 12, 2, hour, tzinfo=UTC))
    cases = {c.loan_id: c for c in db_session.scalars(select(Case))}
    late = [cases[ids[f"S{k}"]] for k in (1, 2, 3)]
    assert all(c.roll_score is not None for c in late)
    assert "challenger" in {c.arm for c in cases.values()}
    tasks = list(db_session.scalars(select(Task)))
    assert tasks
    for task in tasks:
        case = db_session.get_one(Case, task.case_id)
        roll = case.roll_score if case.arm == "challenger" else None
        snapshot = db_session.scalar(select(LoanSnapshot).where(
            LoanSnapshot.loan_id == task.loan_id, LoanSnapshot.as_of == THROUGH))  # fmt: skip
        assert task.priority == priority(unsecured=5_000_000, dpd=snapshot.dpd, roll=roll)


def test_a_refit_changes_nothing_until_an_analyst_publishes_it_and_a_republish_rolls_back(
    db_session,
):
    _book(db_session)
    first_at, second_at = (datetime(2026, 12, 1, h, tzinfo=UTC) for h in (1, 2))
    first = fit_behaviour_score(db_session, through=date(2026, 11, 29), at=first_at)
    publish_behaviour_fit(db_session, fit_id=first.id, by="nia", at=first_at)
    refit = fit_behaviour_score(db_session, through=THROUGH, at=second_at)
    day = date(2026, 12, 2)
    assert fit_in_force(db_session, day=day).id == first.id  # the refit waits
    publish_behaviour_fit(db_session, fit_id=refit.id, by="nia", at=second_at)
    assert fit_in_force(db_session, day=day).id == refit.id  # published: in force
    publish_behaviour_fit(db_session, fit_id=first.id, by="nia",
                          at=datetime(2026, 12, 1, 3, tzinfo=UTC))  # fmt: skip
    assert fit_in_force(db_session, day=day).id == first.id  # published again: back
    audit = db_session.scalars(select(AuditEntry.subject).where(
        AuditEntry.action == "model_published").order_by(AuditEntry.id)).all()  # fmt: skip
    assert audit == [f"behaviour_fit:{first.id}", f"behaviour_fit:{refit.id}",
                     f"behaviour_fit:{first.id}"]  # fmt: skip
    with pytest.raises(NotFoundError, match="no behaviour fit 999"):
        publish_behaviour_fit(db_session, fit_id=999, by="nia", at=second_at)
    # a fit of another version's features (stored before them) cannot be published
    old = fit_behaviour_score(db_session, through=THROUGH, at=second_at)
    old.model = {**old.model, "features": old.model["features"][:-1]}
    db_session.flush()
    with pytest.raises(BehaviourError, match="refit it"):
        publish_behaviour_fit(db_session, fit_id=old.id, by="nia", at=second_at)
    assert old.published_at is None


def test_the_nightly_refit_stores_one_unpublished_fit_a_month(db_session):
    _book(db_session)
    at = datetime(2026, 12, 1, 1, tzinfo=UTC)
    done = refit_if_due(db_session, through=THROUGH, at=at)
    assert done is not None and done["month"] == "2026-11" and done["published"] is False
    fit = db_session.get_one(BehaviourFit, done["fit"])
    assert fit.fitted_through == THROUGH and fit.published_at is None
    assert refit_if_due(db_session, through=THROUGH, at=at) is None  # once a month
    assert fit_in_force(db_session, day=date(2026, 12, 2)) is None  # for an analyst to publish
    early = refit_if_due(db_session, through=date(2026, 8, 31), at=at)
    assert early is not None and "no loan has a known 60-day outcome" in early["unfitted"]
