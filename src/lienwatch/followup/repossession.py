"""Repossession and disposal (收车与处置): the pure rules.

Who may order and approve a repossession, through which legal route, the order of the steps
with their SLAs, and how the sale proceeds are split (costs first, then the loan, then the
borrower). No I/O: :mod:`lienwatch.services.repossession` applies these rules to the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from lienwatch.config import RepossessionSettings
from lienwatch.followup.model import FollowupError


class LegalRoute(StrEnum):
    COURT_ORDER = "court_order"  # a judgment enforced by the court
    SECURITY_ENFORCEMENT = "security_enforcement"  # 实现担保物权特别程序 (special procedure)
    NEGOTIATED_HANDOVER = "negotiated_handover"  # the borrower hands the vehicle over, signed
    SELF_HELP = "self_help"  # towing without a court or the borrower's consent: never allowed


# Lawful routes per jurisdiction; self-help is in none of them, whatever the settings say.
DEFAULT_ROUTES: dict[str, frozenset[LegalRoute]] = {
    "cn": frozenset(
        {LegalRoute.COURT_ORDER, LegalRoute.SECURITY_ENFORCEMENT, LegalRoute.NEGOTIATED_HANDOVER}
    ),
    "us": frozenset({LegalRoute.COURT_ORDER, LegalRoute.NEGOTIATED_HANDOVER}),
}


class RepoStatus(StrEnum):
    ORDERED = "ordered"  # requested, waiting for a supervisor
    APPROVED = "approved"  # the recovery agent may go
    RECOVERED = "recovered"  # the vehicle is in the lender's storage
    APPRAISED = "appraised"
    SOLD = "sold"
    DEFICIENCY = "deficiency"  # proceeds posted; the shortfall stays on the loan as a balance
    SURPLUS_DUE = "surplus_due"  # the loan is settled; the surplus must go back to the borrower
    SETTLED = "settled"  # the loan is settled and nothing is owed to the borrower
    WRITTEN_OFF = "written_off"  # the deficiency was written off


# The step each status waits for next, and the SLA key that bounds it.
NEXT_STEP: dict[RepoStatus, str] = {
    RepoStatus.ORDERED: "approve",
    RepoStatus.APPROVED: "recover",
    RepoStatus.RECOVERED: "appraise",
    RepoStatus.APPRAISED: "sell",
    RepoStatus.SOLD: "post",
    RepoStatus.DEFICIENCY: "write_off",
    RepoStatus.SURPLUS_DUE: "return_surplus",
}
FINAL = frozenset({RepoStatus.SETTLED, RepoStatus.WRITTEN_OFF})
# Steps any supervisor may take (nobody holds them); the recovery's assignee holds the others.
SUPERVISOR_STEPS = frozenset({"approve", "write_off"})
# Storage and recovery costs accrue from approval until the proceeds are posted.
COSTS_OPEN = frozenset(
    {RepoStatus.APPROVED, RepoStatus.RECOVERED, RepoStatus.APPRAISED, RepoStatus.SOLD}
)
COST_KINDS = frozenset({"recovery", "storage", "transport", "appraisal", "auction", "legal"})


@dataclass(frozen=True, slots=True)
class RepossessionPolicy:
    """The rules in force: the DPD floor, the lawful routes and the SLA of each step."""

    min_dpd: int
    max_snapshot_age: timedelta  # an older nightly snapshot does not prove the DPD
    routes: dict[str, frozenset[LegalRoute]]
    sla: dict[str, timedelta]  # by NEXT_STEP value

    def __post_init__(self) -> None:
        if self.min_dpd < 1:
            raise FollowupError(f"min_dpd: must be at least 1, got {self.min_dpd}")
        missing = sorted(set(NEXT_STEP.values()) - set(self.sla))
        if missing:
            raise FollowupError(f"sla: no SLA for step {missing[0]!r}")
        for jurisdiction, routes in self.routes.items():
            if LegalRoute.SELF_HELP in routes:
                raise FollowupError(f"routes.{jurisdiction}: self_help is never a lawful route")


def check_order(
    policy: RepossessionPolicy, *, jurisdiction: str, route: str, dpd: int, legal_ref: str
) -> LegalRoute:
    """The route if a repossession may be ordered, else FollowupError naming the rule."""
    try:
        chosen = LegalRoute(route)
    except ValueError:
        raise FollowupError(f"route: unknown legal route {route!r}") from None
    if chosen is LegalRoute.SELF_HELP:
        raise FollowupError("route: refused (repossession_self_help_forbidden)")
    if chosen not in policy.routes.get(jurisdiction, frozenset()):
        raise FollowupError(
            f"route: refused (repossession_route_not_allowed: {chosen.value} in {jurisdiction})"
        )
    if dpd < policy.min_dpd:
        raise FollowupError(
            f"loan_id: refused (repossession_below_dpd: {dpd} days past due, "
            f"needs {policy.min_dpd})"
        )
    if not legal_ref.strip():
        raise FollowupError(
            f"legal_ref: a {chosen.value} needs the reference of its ruling or signed agreement"
        )
    return chosen


def check_approval(*, approver_role: str, approver: str, ordered_by: str) -> None:
    """A supervisor other than the one who ordered it approves (four eyes)."""
    if approver_role != "supervisor":
        raise FollowupError("by: refused (repossession_needs_supervisor)")
    if approver == ordered_by:
        raise FollowupError("by: refused (repossession_approver_is_orderer)")


def check_step(current: str, expected: RepoStatus, step: str) -> None:
    """Raise unless a repossession in ``current`` may take ``step`` (it must be ``expected``)."""
    if RepoStatus(current) is not expected:
        raise FollowupError(
            f"status: cannot {step} a repossession that is {current} (needs {expected.value})"
        )


@dataclass(frozen=True, slots=True)
class Disposal:
    """How the sale proceeds are split, in fen: costs first, then the loan, then the borrower.

    ``deficiency`` is what the loan still owes after the proceeds (kept as a balance).
    """

    proceeds: int
    costs: int
    costs_recovered: int
    to_loan: int
    surplus: int
    deficiency: int


def allocate_proceeds(*, proceeds: int, costs: int, payoff: int) -> Disposal:
    """Split ``proceeds`` over the repossession ``costs`` and the loan's ``payoff`` (all fen)."""
    for name, value in (("proceeds", proceeds), ("costs", costs), ("payoff", payoff)):
        if value < 0:
            raise FollowupError(f"{name}: must not be negative, got {value} fen")
    costs_recovered = min(proceeds, costs)
    to_loan = min(proceeds - costs_recovered, payoff)
    return Disposal(
        proceeds=proceeds,
        costs=costs,
        costs_recovered=costs_recovered,
        to_loan=to_loan,
        surplus=proceeds - costs_recovered - to_loan,
        deficiency=payoff - to_loan,
    )


def step_team(*, assigned: bool, team: str | None) -> str:
    """Who answers for a repossession step: the assignee's team; ``recovery`` for an assignee
    outside any team; ``unassigned`` for a step nobody holds (one of ``SUPERVISOR_STEPS``)."""
    if not assigned:
        return "unassigned"
    return team or "recovery"


def policy_from_settings(settings: RepossessionSettings) -> RepossessionPolicy:
    """The policy as configured; an unknown route or SLA key raises naming it."""
    routes: dict[str, frozenset[LegalRoute]] = {}
    for jurisdiction, names in settings.routes.items():
        try:
            routes[jurisdiction] = frozenset(LegalRoute(name) for name in names)
        except ValueError as error:
            raise FollowupError(f"routes.{jurisdiction}: {error}") from None
    unknown = sorted(set(settings.sla_h) - set(NEXT_STEP.values()))
    if unknown:
        raise FollowupError(f"sla_h.{unknown[0]}: not a repossession step")
    return RepossessionPolicy(
        min_dpd=settings.min_dpd,
        max_snapshot_age=timedelta(days=settings.max_snapshot_age_d),
        routes=routes,
        sla={step: timedelta(hours=hours) for step, hours in settings.sla_h.items()},
    )
