from __future__ import annotations

import pytest

from lienwatch.errors import LienwatchError
from lienwatch.sim.generate import SimConfig
from lienwatch.sim.records import Profile
from lienwatch.sim.truth import expected_alerts


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("loans", 0),
        ("loans", 2.5),
        ("days", 5),
        ("seed", -1),
        ("as_of", "2026-11-01"),
        ("moving_interval_s", 0),
        ("parked_interval_s", 60),  # shorter than the moving interval
        ("wireless_interval_s", 10),
        ("wireless_share", 1.5),
        ("company_share", -0.1),
    ],
)
def test_bad_settings_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^{field}:") as caught:
        SimConfig(**{field: value})
    assert isinstance(caught.value, LienwatchError)


@pytest.mark.parametrize(
    "mix", [{"not_a_profile": 1.0}, {Profile.ON_TIME: -1.0}, {Profile.ON_TIME: 0.0}]
)
def test_bad_profile_mix(mix: dict) -> None:
    with pytest.raises(ValueError, match=r"^profile_mix:"):
        SimConfig(profile_mix=mix)


def test_profile_mix_is_normalised_and_accepts_names() -> None:
    config = SimConfig(profile_mix={"on_time": 3, Profile.FRAUD_RING: 1})
    assert config.profile_mix == {Profile.ON_TIME: 0.75, Profile.FRAUD_RING: 0.25}


def test_default_mix_and_window() -> None:
    config = SimConfig()
    assert config.profile_mix[Profile.ON_TIME] == pytest.approx(0.70)
    assert sum(config.profile_mix.values()) == pytest.approx(1.0)
    assert (config.as_of - config.start).days == config.days


def test_expected_alerts_cover_every_profile() -> None:
    assert expected_alerts(Profile.ON_TIME) == frozenset()
    assert "device_offline" in expected_alerts("secondary_pledge")
    assert "power_cut" in expected_alerts(Profile.TRACKER_REMOVED)
    assert "device_offline" in expected_alerts(Profile.TRACKER_REMOVED)  # never reports again
    assert "left_region" in expected_alerts(Profile.MOVES_PROVINCE)
    assert "cluster" in expected_alerts(Profile.FRAUD_RING)
    assert all(expected_alerts(p) is not None for p in Profile)
    with pytest.raises(ValueError, match=r"^profile:"):
        expected_alerts("nonsense")
