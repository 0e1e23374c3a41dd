"""Pre-loan checks and the decision policy: check digits, hard rules, grades, amounts."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from lienwatch.domain.identifiers import resident_id_check, vin_check
from lienwatch.domain.schedule import annuity_payment
from lienwatch.risk.applications import ApplicationError, parse_application
from lienwatch.risk.checks import (
    Application,
    CheckLimits,
    Severity,
    check_application,
    id_number_problem,
    vin_problem,
)
from lienwatch.risk.policy import PolicyError, decide, income_capacity, parse_policy, shipped_policy

VALID_ID = "11010519491231002X"  # the GB 11643 standard's own example
VALID_VIN = "1M8GDM9AXKP042788"  # a check digit of X


def test_identity_number_check_character():
    assert resident_id_check(VALID_ID[:17]) == "X"
    assert id_number_problem(VALID_ID) is None
    assert id_number_problem(VALID_ID.lower()) is None
    assert "expected X" in id_number_problem("110105194912310021")
    assert "date of birth" in id_number_problem("110105194902301234")
    assert "17 digits" in id_number_problem("1101051949")


def test_vin_check_digit():
    assert vin_check(VALID_VIN) == "X" and vin_problem(VALID_VIN) is None
    assert "expected X" in vin_problem("1M8GDM9A1KP042788")
    assert "I, O, Q" in vin_problem("1M8GDM9AXKP04278O")
    assert "not 17" in vin_problem("1M8GDM9AX")


def _app(**changes) -> Application:
    base = Application(
        application_id="A1", applied_on=date(2026, 6, 1), id_number="110105199001011234",
        monthly_income=2_000_000, monthly_debt=200_000, amount=15_000_000, term_months=36,
        vin=VALID_VIN, vehicle_year=2025, price=20_000_000, appraisal=20_000_000,
        identifiers={"phone": "13800000000"},
    )  # fmt: skip
    base = replace(base, id_number=base.id_number[:17] + resident_id_check(base.id_number[:17]))
    return replace(base, **changes)


def _codes(findings) -> list[str]:
    return [f.code for f in findings]


def test_a_clean_application_passes_every_check():
    assert check_application(_app(), CheckLimits(), blacklist={}) == []


def test_each_hard_rule_has_its_reason_code():
    limits = CheckLimits()
    old = _app(id_number="11010519600101" + "123")
    old = replace(old, id_number=old.id_number + resident_id_check(old.id_number))
    assert _codes(check_application(old, limits, blacklist={})) == ["AGE_AT_MATURITY"]
    young = _app(id_number="11010520100101123")
    young = replace(young, id_number=young.id_number + resident_id_check(young.id_number))
    assert _codes(check_application(young, limits, blacklist={})) == ["AGE_MINIMUM"]
    assert _codes(check_application(_app(id_number="110105199001011230"), limits,
                                    blacklist={}))[0] == "ID_CHECK_DIGIT"  # fmt: skip
    hit = check_application(_app(), limits, blacklist={"phone": {"13800000000"}})
    assert _codes(hit) == ["BLACKLIST"] and hit[0].severity is Severity.DECLINE
    assert _codes(check_application(_app(vin="1M8GDM9A1KP042788"), limits,
                                    blacklist={})) == ["VIN_CHECK_DIGIT"]  # fmt: skip
    assert _codes(check_application(_app(vehicle_year=2010), limits,
                                    blacklist={})) == ["VEHICLE_AGE"]  # fmt: skip
    inflated = check_application(_app(price=23_000_000), limits, blacklist={})
    assert _codes(inflated) == ["PRICE_VS_APPRAISAL"] and inflated[0].severity is Severity.REFER
    assert check_application(_app(price=22_000_000), limits, blacklist={}) == []  # 10 %: in
    linked = check_application(_app(), limits, blacklist={}, linked={"A7"})
    assert _codes(linked) == ["LINKED_APPLICATIONS"] and "A7" in linked[0].detail


def test_the_credit_record_and_the_income_proof_are_checked_when_supplied():
    limits = CheckLimits()
    clean = _app(credit_overdue=0, credit_worst_dpd_24m=30, credit_inquiries_6m=2,
                 income_proof="payslip")  # fmt: skip
    assert check_application(clean, limits, blacklist={}) == []
    overdue = check_application(_app(credit_overdue=50_000), limits, blacklist={})
    assert _codes(overdue) == ["CREDIT_OVERDUE"] and overdue[0].severity is Severity.DECLINE
    found = check_application(_app(credit_worst_dpd_24m=120, credit_inquiries_6m=9,
                                   income_proof="self_declared"), limits, blacklist={})
    assert _codes(found) == ["CREDIT_HISTORY", "CREDIT_INQUIRIES", "INCOME_UNVERIFIED"]
    assert {f.severity for f in found} == {Severity.REFER}
    assert "120 days past due" in found[0].detail


def test_the_credit_columns_are_optional_and_checked_when_given():
    row = {"application_id": "A1", "applied_on": "2026-06-01", "id_number": "110105199001011234",
           "monthly_income": "20000", "monthly_debt": "2000", "amount": "150000",
           "term_months": "36", "vin": VALID_VIN, "vehicle_year": "2025", "price": "200000",
           "appraisal": "200000"}  # fmt: skip
    plain = parse_application("a.csv:2", row)
    assert (plain.credit_overdue, plain.credit_worst_dpd_24m) == (None, None)
    assert plain.income_proof == ""
    full = parse_application("a.csv:2", {**row, "credit_overdue": "500.00",
                                         "credit_worst_dpd_24m": "45", "income_proof": "payslip"})
    assert (full.credit_overdue, full.credit_worst_dpd_24m, full.income_proof) == (
        50_000, 45, "payslip")
    with pytest.raises(ApplicationError, match=r"a.csv:2, column income_proof: 'rumour'"):
        parse_application("a.csv:2", {**row, "income_proof": "rumour"})
    with pytest.raises(ApplicationError, match=r"a.csv:2, column credit_inquiries_6m: negative"):
        parse_application("a.csv:2", {**row, "credit_inquiries_6m": "-1"})


def test_grades_follow_the_score_bands():
    policy = shipped_policy()
    assert [policy.grade(s) for s in (700, 560, 559, 530, 500, 470, 469, -50)] == list("AABBCDEE")


def test_an_approved_amount_is_capped_by_ltv_and_income():
    policy = shipped_policy()
    decision = decide(_app(), 600, [], policy, blacklist={})
    assert (decision.grade, decision.decision) == ("A", "approve")
    assert decision.amount == 15_000_000 and decision.apr == Decimal("0.069")
    assert decision.installment == annuity_payment(15_000_000, Fraction("0.069") / 12, 36)
    # LTV: 80 % of the lower of price and appraisal
    capped = decide(_app(amount=19_000_000, appraisal=18_000_000, price=18_000_000), 600, [],
                    policy, blacklist={})  # fmt: skip
    assert capped.amount == 14_400_000 and capped.decision == "approve"
    assert [f.code for f in capped.findings] == ["AMOUNT_LTV_CAP"]
    # income: (debt + installment) / income <= 50 %
    poor = _app(monthly_income=600_000)
    room = income_capacity(poor, policy, Decimal("0.069"), 36)
    limited = decide(poor, 600, [], policy, blacklist={})
    assert limited.amount == room // 10_000 * 10_000 and limited.dti <= Decimal("0.5")
    assert [f.code for f in limited.findings] == ["AMOUNT_DTI"]


def test_hard_rules_come_first_and_small_offers_decline():
    policy = shipped_policy()
    listed = decide(_app(), 640, [], policy, blacklist={"vin": {VALID_VIN}})
    assert (listed.decision, listed.amount) == ("decline", 0)
    referred = decide(_app(price=23_000_000), 640, [], policy, blacklist={})
    assert referred.decision == "refer"
    broke = decide(_app(monthly_debt=1_000_000), 640, [], policy, blacklist={})
    assert broke.decision == "decline" and broke.findings[-1].code == "AMOUNT_DTI"
    low = decide(_app(), 480, [], policy, blacklist={})
    assert (low.grade, low.decision) == ("D", "decline")
    middle = decide(_app(term_months=60), 510, [], policy, blacklist={})
    assert (middle.grade, middle.decision, middle.term_months) == ("C", "refer", 36)


def test_a_policy_that_does_not_hold_together_names_its_key():
    with pytest.raises(PolicyError, match=r"grades: .*best first"):
        parse_policy({"grades": {"A": {"min_score": 1, "decision": "approve", "apr": "0.1",
                                       "max_term_months": 12},
                                 "B": {"min_score": 5, "decision": "refer", "apr": "0.1",
                                       "max_term_months": 12}},
                      "max_dti": "0.5", "ltv_caps": {}, "min_amount_yuan": "1",
                      "amount_step_yuan": "1"}, "p.toml")  # fmt: skip
    with pytest.raises(PolicyError, match=r"p\.toml: max_dti"):
        parse_policy({**shipped_policy().model_dump(), "max_dti": "2"}, "p.toml")
    with pytest.raises(PolicyError, match=r"p\.toml: checks\.min_age"):
        parse_policy({**shipped_policy().model_dump(), "checks": {"min_age": "old"}}, "p.toml")
