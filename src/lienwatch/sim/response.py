"""How a simulated delinquent borrower responds to being reached by a collector.

The simulator writes every loan's payments before any follow-up runs; on its own, no call can
change them. This model is the borrower's side of a conversation: when an agent's call or
visit reaches the borrower (right-party contact or a promise, as recorded on the case) on a
loan that is past due, the borrower pays what is overdue within a few days with probability

    p = uplift[profile] × 0.5 ** (dpd at contact / half_life_days)

— strong for the willing-but-forgetful (``late_then_cures``: they were going to pay weeks
later and a reminder brings it forward), weak for the distressed (``slides_into_default``) and
near nil for strategic defaulters and fraud (pledged or hidden cars, fraud rings), and fading
the longer the loan has been late before anyone reached the borrower. Each case gets at most
one such response. The effect sizes are **assumptions** (no collections study is cited in
the project's reference notes): they encode the common collections rule of thumb that early
contact matters most and that willingness to pay, not reachability, decides the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType

import numpy as np

from lienwatch.sim.records import Profile

#: P(paying the arrears soon after a first conversation at 0 days past due), by profile.
DEFAULT_UPLIFT: Mapping[Profile, float] = MappingProxyType({
    Profile.ON_TIME: 0.8,  # a payer in good standing who slipped
    Profile.LATE_THEN_CURES: 0.5,  # willing but forgetful or short until payday
    Profile.SLIDES_INTO_DEFAULT: 0.15,  # distressed: pays when they can, rarely all of it
    Profile.MOVES_PROVINCE: 0.1,
    Profile.SECONDARY_PLEDGE: 0.03,  # strategic: the car is already pledged elsewhere
    Profile.TRACKER_REMOVED: 0.03,
    Profile.FRAUD_RING: 0.02,
})  # fmt: skip


class ResponseError(ValueError):
    """A contact-response parameter out of range."""


@dataclass(frozen=True, slots=True)
class ContactResponse:
    """The contact-response model (see the module); every effect size is a parameter."""

    uplift: Mapping[Profile, float] = field(default_factory=lambda: DEFAULT_UPLIFT)
    half_life_days: float = 10.0  # days past due at contact that halve the response
    max_lag_days: int = 3  # the payment comes 0..max_lag_days after the conversation

    def __post_init__(self) -> None:
        for profile, p in self.uplift.items():
            if not 0.0 <= p <= 1.0:
                raise ResponseError(f"uplift: {profile} must be in [0, 1], got {p}")
        if self.half_life_days <= 0:
            raise ResponseError(f"half_life_days: must be positive, got {self.half_life_days}")
        if not 0 <= self.max_lag_days <= 30:
            raise ResponseError(f"max_lag_days: must be 0..30, got {self.max_lag_days}")

    def probability(self, profile: Profile, dpd: int) -> float:
        """P(the borrower pays the arrears because of a conversation at ``dpd`` days late)."""
        return self.uplift.get(profile, 0.0) * 0.5 ** (max(dpd, 0) / self.half_life_days)

    def pays_on(self, rng: np.random.Generator, profile: Profile, dpd: int, reached_on: date,
                promised_on: date | None = None) -> date | None:  # fmt: skip
        """The day the borrower reached on ``reached_on`` pays the arrears, or None: a promise
        made in the conversation is kept on its day when the borrower responds."""
        if rng.random() >= self.probability(profile, dpd):
            return None
        if promised_on is not None and promised_on >= reached_on:
            return promised_on
        return reached_on + timedelta(days=int(rng.integers(0, self.max_lag_days + 1)))
