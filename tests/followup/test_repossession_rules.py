"""The pure repossession rules: routes, the DPD floor, approval, and the proceeds waterfall."""

from __future__ import annotations

import pytest

from lienwatch.config import RepossessionSettings
from lienwatch.followup.model import FollowupError
from lienwatch.followup.repossession import (
    LegalRoute,
    allocate_proceeds,
    check_approval,
    check_order,
    policy_from_settings,
)

POLICY = policy_from_settings(RepossessionSettings())


def test_costs_come_first_then_the_loan_then_the_borrower():
    surplus = allocate_proceeds(proceeds=1_000_000, costs=50_000, payoff=800_000)
    assert (surplus.costs_recovered, surplus.to_loan, surplus.surplus, surplus.deficiency) == (
        50_000, 800_000, 150_000, 0,
    )  # fmt: skip
    short = allocate_proceeds(proceeds=500_000, costs=50_000, payoff=800_000)
    assert (short.costs_recovered, short.to_loan, short.surplus, short.deficiency) == (
        50_000, 450_000, 0, 350_000,
    )  # fmt: skip
    below_costs = allocate_proceeds(proceeds=30_000, costs=50_000, payoff=800_000)
    assert (below_costs.costs_recovered, below_costs.to_loan, below_costs.deficiency) == (
        30_000, 0, 800_000,
    )  # fmt: skip
    with pytest.raises(FollowupError, match=r"^proceeds: must not be negative"):
        allocate_proceeds(proceeds=-1, costs=0, payoff=0)


def test_order_rules_name_the_rule_that_refused():
    assert (
        check_order(POLICY, jurisdiction="cn", route="security_enforcement", dpd=90, legal_ref="x")
        is LegalRoute.SECURITY_ENFORCEMENT
    )
    with pytest.raises(FollowupError, match="repossession_self_help_forbidden"):
        check_order(POLICY, jurisdiction="cn", route="self_help", dpd=400, legal_ref="x")
    with pytest.raises(FollowupError, match="repossession_route_not_allowed"):
        check_order(POLICY, jurisdiction="us", route="security_enforcement", dpd=400, legal_ref="x")
    with pytest.raises(FollowupError, match="repossession_below_dpd: 89 days"):
        check_order(POLICY, jurisdiction="cn", route="court_order", dpd=89, legal_ref="x")
    with pytest.raises(FollowupError, match=r"^legal_ref: a court_order needs"):
        check_order(POLICY, jurisdiction="cn", route="court_order", dpd=90, legal_ref=" ")
    with pytest.raises(FollowupError, match=r"^route: unknown legal route 'tow'"):
        check_order(POLICY, jurisdiction="cn", route="tow", dpd=90, legal_ref="x")


def test_approval_needs_a_second_person_who_is_a_supervisor():
    check_approval(approver_role="supervisor", approver="sam", ordered_by="ann")
    with pytest.raises(FollowupError, match="repossession_needs_supervisor"):
        check_approval(approver_role="agent", approver="bob", ordered_by="ann")
    with pytest.raises(FollowupError, match="repossession_approver_is_orderer"):
        check_approval(approver_role="supervisor", approver="sam", ordered_by="sam")


def test_settings_cannot_make_self_help_lawful_or_leave_a_step_without_sla():
    with pytest.raises(FollowupError, match=r"^routes.cn: self_help is never"):
        policy_from_settings(RepossessionSettings(routes={"cn": ["self_help"]}))
    with pytest.raises(FollowupError, match=r"^routes.cn: 'tow'"):
        policy_from_settings(RepossessionSettings(routes={"cn": ["tow"]}))
    with pytest.raises(FollowupError, match=r"^sla: no SLA for step 'appraise'"):
        policy_from_settings(RepossessionSettings(sla_h={"recover": 1}))
