"""The monitor scored against the simulator's ground truth on a small portfolio."""

from __future__ import annotations

from datetime import date

from lienwatch.commands.demo import _detector_cells
from lienwatch.demo.scoring import TypeScore, monitor_portfolio, score_alerts, scoring_summary
from lienwatch.monitor import AlertType
from lienwatch.sim import SimConfig, generate


def test_detectors_meet_their_floors():
    portfolio = generate(SimConfig(loans=300, days=30, seed=3, as_of=date(2026, 11, 1)))
    result = monitor_portfolio(portfolio)
    scores = score_alerts(portfolio, result.alerts)
    assert min(scores[n].expected for n in ("cluster", "long_stay", "left_region")) > 0
    for name in ("power_cut", "device_removed", "device_offline", "cluster"):
        assert scores[name].recall == 1.0, (name, scores[name])
    for name in ("long_stay", "risk_zone_visit", "left_region", "tracker_mismatch"):
        assert scores[name].recall >= 0.9, (name, scores[name])
    for name in ("night_relocation", "address_mismatch"):
        assert scores[name].recall >= 0.75, (name, scores[name])
    for name in ("power_cut", "device_removed", "device_offline", "tracker_mismatch", "cluster"):
        assert scores[name].precision == 1.0, (name, scores[name])
    assert scores["unusual_area"].expected == 0 and scores["unusual_area"].precision is None
    for score in scores.values():  # every flag is a hit or an unexpected flag on some profile
        assert score.flagged == score.hits + sum(score.unexpected_by_profile.values())
    # a pledged car sleeps at the pawn lot: the night-relocation flags the truth did not
    # expect are on pledged cars and ring cars parked together, never on on-time loans
    assert set(scores["night_relocation"].unexpected_by_profile) <= {
        "secondary_pledge",
        "fraud_ring",
    }
    on_time = sum(1 for p in portfolio.truth.profiles.values() if p == "on_time")
    false_alarms = sum(s.on_time_flagged for s in scores.values())
    assert false_alarms <= 0.05 * on_time
    summary = scoring_summary(portfolio, result)
    assert summary["by_type"]["power_cut"]["median_delay_h"] == 0.0
    # every detector is in the summary, quiet ones and those no story expects included
    assert list(summary["by_type"]) == [str(t) for t in AlertType]
    assert summary["on_time_loans"] == on_time
    for name, row in summary["by_type"].items():
        assert row["on_time_share"] == round(row["on_time_flagged"] / on_time, 4), name
        flagged = row["flagged"]
        risky = None if not flagged else round((flagged - row["on_time_flagged"]) / flagged, 3)
        assert row["risky_share"] == risky, name
    assert summary["counts"]["fixes"] + summary["counts"].get("late", 0) == len(portfolio.positions)


def test_a_detector_as_a_lender_reads_it():
    score = TypeScore("long_stay", expected=10, flagged=8, hits=6, on_time_flagged=2,
                      median_delay_h=None, on_time_loans=400)  # fmt: skip
    assert (score.precision, score.recall) == (0.75, 0.6)
    assert (score.risky_share, score.on_time_share) == (0.75, 0.005)
    assert _detector_cells(score.as_dict()) == ("8", "0.75", "0.60", "75.0 %", "2 (0.5 %)")
    # a detector no story expects: no precision, but its flags are still read
    area = TypeScore("unusual_area", expected=0, flagged=4, hits=0, on_time_flagged=1,
                     median_delay_h=None, on_time_loans=400)  # fmt: skip
    assert area.precision is None and area.risky_share == 0.75
    quiet = TypeScore("gnss_antenna_cut", 0, 0, 0, 0, None, on_time_loans=400)
    assert _detector_cells(quiet.as_dict()) == ("0", "—", "—", "—", "0 (0.0 %)")
