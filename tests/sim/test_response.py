"""The contact-response model: who pays after a conversation, how soon, and how it fades."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from lienwatch.sim.records import Profile
from lienwatch.sim.response import DEFAULT_UPLIFT, ContactResponse, ResponseError

REACHED = date(2026, 10, 20)


def paid_share(model: ContactResponse, profile: Profile, dpd: int, draws: int = 4000) -> float:
    rng = np.random.default_rng(3)
    return sum(model.pays_on(rng, profile, dpd, REACHED) is not None
               for _ in range(draws)) / draws  # fmt: skip


def test_willing_borrowers_respond_strongly_and_strategic_defaulters_hardly():
    model = ContactResponse()
    forgetful = paid_share(model, Profile.LATE_THEN_CURES, 1)
    distressed = paid_share(model, Profile.SLIDES_INTO_DEFAULT, 1)
    strategic = paid_share(model, Profile.SECONDARY_PLEDGE, 1)
    assert forgetful > 0.4 > distressed > 0.1 > strategic
    assert forgetful == pytest.approx(model.probability(Profile.LATE_THEN_CURES, 1), abs=0.03)


def test_the_response_fades_the_later_the_borrower_is_reached():
    model = ContactResponse(half_life_days=10)
    early = model.probability(Profile.LATE_THEN_CURES, 0)
    assert early == DEFAULT_UPLIFT[Profile.LATE_THEN_CURES]
    assert model.probability(Profile.LATE_THEN_CURES, 10) == pytest.approx(early / 2)
    assert model.probability(Profile.LATE_THEN_CURES, 30) == pytest.approx(early / 8)
    assert paid_share(model, Profile.LATE_THEN_CURES, 30) < paid_share(
        model, Profile.LATE_THEN_CURES, 2) / 2  # fmt: skip


def test_a_responding_borrower_pays_within_the_lag_or_keeps_the_promise_on_its_day():
    model = ContactResponse(uplift={Profile.LATE_THEN_CURES: 1.0}, max_lag_days=3)
    rng = np.random.default_rng(0)
    days = {model.pays_on(rng, Profile.LATE_THEN_CURES, 0, REACHED) for _ in range(200)}
    assert days == {REACHED + timedelta(days=k) for k in range(4)}
    promised = REACHED + timedelta(days=2)
    assert model.pays_on(rng, Profile.LATE_THEN_CURES, 0, REACHED, promised) == promised
    assert model.pays_on(rng, Profile.ON_TIME, 0, REACHED) is None  # no uplift given: none


def test_the_same_seed_gives_the_same_responses():
    def draws(seed: int) -> list[date | None]:
        rng = np.random.default_rng(seed)
        return [ContactResponse().pays_on(rng, Profile.LATE_THEN_CURES, 3, REACHED)
                for _ in range(50)]  # fmt: skip

    assert draws(1) == draws(1) != draws(2)


@pytest.mark.parametrize(("options", "named"), [
    ({"uplift": {Profile.FRAUD_RING: 1.5}}, "uplift"),
    ({"half_life_days": 0}, "half_life_days"),
    ({"max_lag_days": -1}, "max_lag_days"),
])  # fmt: skip
def test_a_parameter_out_of_range_is_named(options, named):
    with pytest.raises(ResponseError, match=f"^{named}:"):
        ContactResponse(**options)
