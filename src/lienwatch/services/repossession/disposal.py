"""Disposal (处置): the costs, the appraisal, the sale, the proceeds posted to the loan costs
first, the surplus returned or the deficiency written off."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from lienwatch.followup.model import FollowupError
from lienwatch.followup.repossession import (
    COST_KINDS,
    COSTS_OPEN,
    Disposal,
    RepoStatus,
    allocate_proceeds,
    check_step,
)
from lienwatch.services.ledger import LedgerService
from lienwatch.services.payments import post_payment
from lienwatch.services.repossession.base import RepossessionState, check_aware, require_text
from lienwatch.store.repossession import (
    costs_total,
)
from lienwatch.store.tables import (
    Case,
    Loan,
    Repossession,
    RepossessionCost,
    Vehicle,
)


class DisposalSteps(RepossessionState):
    """The verbs after the car is recovered."""

    def add_cost(
        self,
        *,
        repossession_id: int,
        kind: str,
        amount: int,
        incurred_on: date,
        by: str,
        at: datetime,
        note: str = "",
    ) -> RepossessionCost:
        """A recovery, storage, transport, appraisal, auction or legal cost in fen; accepted
        from approval until the proceeds are posted (they are recovered first)."""
        check_aware(at)
        repo = self._get(repossession_id)
        if RepoStatus(repo.status) not in COSTS_OPEN:
            raise FollowupError(
                f"status: no costs can be added to a repossession that is {repo.status}"
            )
        if kind not in COST_KINDS:
            raise FollowupError(f"kind: {kind!r} is not one of {', '.join(sorted(COST_KINDS))}")
        if amount <= 0:
            raise FollowupError(f"amount: a cost must be positive, got {amount} fen")
        user = self._user(by)
        cost = RepossessionCost(
            repossession_id=repo.id, kind=kind, amount=amount, incurred_on=incurred_on,
            recorded_by=user.id, recorded_at=at, note=note or None,
        )  # fmt: skip
        self.session.add(cost)
        self.session.flush()
        case = self.session.get_one(Case, repo.case_id)
        self._log(repo, case, "cost", user, at, note, {"kind": kind, "amount": amount},
                  key=f"repo:{repo.id}:cost:{cost.id}")  # fmt: skip
        return cost

    def record_appraisal(
        self, *, repossession_id: int, by: str, at: datetime, value: int, appraiser: str
    ) -> Repossession:
        """The recovered vehicle's appraised value in fen, by a named appraiser."""
        repo = self._get(repossession_id)
        check_step(repo.status, RepoStatus.RECOVERED, "appraise")
        require_text(appraiser=appraiser)
        if value <= 0:
            raise FollowupError(f"value: an appraisal must be positive, got {value} fen")
        user, case = self._user(by), self.session.get_one(Case, repo.case_id)
        repo.appraised_value = value
        self._advance(repo, case, RepoStatus.APPRAISED, user, at, "",
                      {"value": value, "appraiser": appraiser.strip()})  # fmt: skip
        return repo

    def record_sale(
        self, *, repossession_id: int, by: str, at: datetime, sold_on: date, price: int, buyer: str
    ) -> Repossession:
        """The vehicle was sold for ``price`` fen on ``sold_on``; its mortgage registration is
        released that day (the buyer takes the car free of it)."""
        repo = self._get(repossession_id)
        check_step(repo.status, RepoStatus.APPRAISED, "record the sale of")
        require_text(buyer=buyer)
        if price <= 0:
            raise FollowupError(f"price: a sale price must be positive, got {price} fen")
        assert repo.recovered_on is not None  # recorded before the appraisal
        if sold_on < repo.recovered_on:
            raise FollowupError(f"sold_on: {sold_on} is before the recovery on {repo.recovered_on}")
        user, case = self._user(by), self.session.get_one(Case, repo.case_id)
        repo.sold_on, repo.sale_price, repo.buyer = sold_on, price, buyer.strip()
        self._release_for_sale(repo, sold_on, by, at)
        self._advance(repo, case, RepoStatus.SOLD, user, at, "",
                      {"sold_on": sold_on.isoformat(), "price": price,
                       "buyer": repo.buyer})  # fmt: skip
        return repo

    def post_proceeds(self, *, repossession_id: int, by: str, at: datetime) -> Disposal:
        """Post the sale proceeds: costs first, then the loan's payoff as of the evening
        before the sale day (its nightly snapshot must be there) as a payment on the sale day
        keyed ``repo:<id>:proceeds``, then any surplus back to the borrower. With no deficiency
        the loan is settled and the case closed (a surplus waits in ``surplus_due`` for
        :meth:`return_surplus`); otherwise the deficiency stays as a balance
        (status ``deficiency``) until :meth:`write_off`. Posting again returns the same split
        and records nothing new."""
        repo = self._get(repossession_id)
        if repo.paid_to_loan is not None:
            return self._disposal(repo)
        check_step(repo.status, RepoStatus.SOLD, "post the proceeds of")
        assert repo.sale_price is not None and repo.sold_on is not None
        user, case = self._user(by), self.session.get_one(Case, repo.case_id)
        loan = self.session.get_one(Loan, repo.loan_id)
        check_aware(at)
        # the payoff the evening before the sale day, when the proceeds are paid
        snapshot = self._latest_snapshot(repo.loan_id, repo.sold_on - timedelta(days=1))
        costs = costs_total(self.session, repo.id)
        split = allocate_proceeds(proceeds=repo.sale_price, costs=costs, payoff=snapshot.payoff)
        if split.to_loan > 0:
            post_payment(self.session, loan=loan, external_id=f"repo:{repo.id}:proceeds",
                         paid_on=repo.sold_on, amount=split.to_loan, channel="repossession",
                         by=user.username, at=at)  # fmt: skip
        repo.costs_recovered, repo.paid_to_loan = split.costs_recovered, split.to_loan
        repo.surplus, repo.deficiency = split.surplus, split.deficiency
        details: dict[str, Any] = {
            "costs": split.costs, "costs_recovered": split.costs_recovered,
            "to_loan": split.to_loan, "surplus": split.surplus, "deficiency": split.deficiency,
            "payoff_on": snapshot.as_of.isoformat(),
        }  # fmt: skip
        if split.deficiency:
            self._advance(repo, case, RepoStatus.DEFICIENCY, user, at, "deficiency kept", details)
            return split
        if split.surplus:
            note = f"surplus of {split.surplus} fen to return"
            self._advance(repo, case, RepoStatus.SURPLUS_DUE, user, at, note, details)
        else:
            self._advance(repo, case, RepoStatus.SETTLED, user, at, "settled", details)
        self._close_loan(case, loan, "settled", user, at)
        return split

    def return_surplus(
        self, *, repossession_id: int, by: str, at: datetime, reference: str
    ) -> Repossession:
        """The surplus went back to the borrower by the transfer ``reference``."""
        repo = self._get(repossession_id)
        check_step(repo.status, RepoStatus.SURPLUS_DUE, "return the surplus of")
        require_text(reference=reference)
        user, case = self._user(by), self.session.get_one(Case, repo.case_id)
        repo.surplus_ref = reference.strip()
        details = {"surplus": repo.surplus, "reference": repo.surplus_ref}
        self._advance(repo, case, RepoStatus.SETTLED, user, at, "", details)
        return repo

    def write_off(self, *, repossession_id: int, by: str, at: datetime, why: str) -> Repossession:
        """A supervisor writes off the deficiency left after the sale: the loan becomes
        ``written-off`` and the case closes."""
        repo = self._get(repossession_id)
        check_step(repo.status, RepoStatus.DEFICIENCY, "write off")
        if not why.strip():
            raise FollowupError("why: a write-off needs a reason")
        user = self._user(by)
        if user.role != "supervisor":
            raise FollowupError("by: refused (write_off_needs_supervisor)")
        case = self.session.get_one(Case, repo.case_id)
        details = {"deficiency": repo.deficiency}
        self._advance(repo, case, RepoStatus.WRITTEN_OFF, user, at, why, details)
        self._close_loan(case, self.session.get_one(Loan, repo.loan_id), "written-off", user, at)
        return repo

    def _release_for_sale(self, repo: Repossession, sold_on: date, by: str, at: datetime) -> None:
        vin = self.session.get_one(Vehicle, self.session.get_one(Loan, repo.loan_id).vehicle_id).vin
        ledger = LedgerService(self.session)
        if ledger.collateral_registration(vin) is not None:
            ledger.release_collateral(vin=vin, released_on=sold_on, by=by, at=at,
                                      certificate=f"sale of repossession {repo.id}")  # fmt: skip
