"""Strategies as data: the shipped ones load, bad files are refused with the key at fault,
arms are balanced per stratum; KPI intervals."""

from __future__ import annotations

import tomllib
from collections import Counter
from importlib import resources

import pytest

from lienwatch.followup.kpi import compare, rate
from lienwatch.followup.model import Channel, FollowupError, TriggerKind
from lienwatch.followup.strategy import Segment, load_strategy, parse_strategy, shipped_strategy


def shipped_data(name: str = "cn") -> dict:
    text = resources.files("lienwatch.followup").joinpath(f"strategies/{name}.toml").read_text()
    return tomllib.loads(text)


def test_shipped_ladders_follow_the_issue():
    cn = shipped_strategy("cn")
    missed = cn.ladder_for(Segment(TriggerKind.MISSED_INSTALLMENT, "M1", delinquent=True))
    assert [(s.channel, s.offset.days + 1) for s in missed.steps] == [
        (Channel.SMS, 1),
        (Channel.VOICE, 3),
        (Channel.CALL, 5),
        (Channel.LETTER, 10),
        (Channel.VISIT, 15),
        (Channel.REVIEW, 30),
        (Channel.LEGAL, 60),
    ]
    us = shipped_strategy("us")
    us_missed = us.ladder_for(Segment(TriggerKind.MISSED_INSTALLMENT, "M1", delinquent=True))
    # the written notice of default goes out before the D+30 repossession review, in both arms
    for ladder in (missed, us_missed, cn.challenger.ladders[0], us.challenger.ladders[0]):
        channels = [s.channel for s in ladder.steps]
        assert channels.index(Channel.LETTER) < channels.index(Channel.REVIEW)
    removed = cn.ladder_for(
        Segment(TriggerKind.COLLATERAL_ALERT, "M1", alert_type="device_removed", delinquent=True)
    )
    assert removed.steps[0].channel is Channel.CALL and removed.steps[0].sla.total_seconds() == 3600
    performing = cn.ladder_for(
        Segment(TriggerKind.COLLATERAL_ALERT, "M0", alert_type="device_removed", delinquent=False)
    )
    assert performing.name == "collateral-alert"
    assert shipped_strategy("us").profile == "us"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["ladders"][1]["steps"][0].update(channel="fax"),
            r"ladders\.1\.steps\.0\.channel",
        ),
        (
            lambda d: d["ladders"][1]["steps"][1].update(offset="-2d"),
            r"offset: '-2d' is not a duration",
        ),
        (
            lambda d: d["ladders"][1]["steps"][0].pop("sla"),
            r"ladders\.1\.steps\.0\.sla: Field required",
        ),
        (lambda d: d["ladders"][1].pop("escalate_to"), r"ladders\.1\.escalate_to: Field required"),
        (
            lambda d: d["ladders"][1].update(repeat_every="0"),
            r"ladders\.1\.repeat_every: .*repeat_every must be longer than zero",
        ),
        (lambda d: d["ladders"].pop(0), r"no unfiltered ladder for trigger 'pre_due'"),
        (lambda d: d.update(colour="red"), r"colour: unknown key"),
        (lambda d: d.update(promise_within="12h"), r"promise_within: .*must be at least 1d"),
    ],
)
def test_bad_strategies_are_refused_with_the_key(edit, message):
    data = shipped_data()
    edit(data)
    with pytest.raises(FollowupError, match=message):
        parse_strategy(data, source="s.toml")


def test_load_strategy_reports_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = \n", encoding="utf-8")
    with pytest.raises(FollowupError, match=r"broken\.toml"):
        load_strategy(path)


def test_arms_are_seeded_and_balanced_within_each_stratum():
    cn = shipped_strategy("cn")  # split 0.5: blocks of two
    for bucket in ("M1", "M2", "M3"):
        arms = [cn.arm_for(bucket, i) for i in range(40)]
        assert Counter(arms) == {"champion": 20, "challenger": 20}
        assert all(arms[i] != arms[i + 1] for i in range(0, 40, 2))  # one of each per block
    assert [cn.arm_for("M1", i) for i in range(10)] == [cn.arm_for("M1", i) for i in range(10)]
    us = shipped_strategy("us")  # split 0.3: 3 of every 10
    assert Counter(us.arm_for("M2", i) for i in range(100))["challenger"] == 30


def test_wilson_interval_and_newcombe_difference():
    assert rate(0, 1).as_dict()["ci"] == [0.0, 0.7935]
    eight = rate(8, 10)
    assert (round(eight.low, 4), round(eight.high, 4)) == (0.4902, 0.9433)
    clear = compare(rate(20, 100), rate(60, 100))
    assert clear.significant and clear.low > 0.25
    assert not compare(rate(5, 10), rate(6, 10)).significant
    with pytest.raises(ValueError, match="hits"):
        rate(3, 2)


def test_a_challenger_orders_its_queue_by_the_behaviour_score_or_changes_ladders():
    cn = shipped_strategy("cn")  # its challenger changes a ladder, not the order
    assert not cn.scores_cases and cn.priority_of("challenger") == "dpd"
    data = tomllib.loads((resources.files("lienwatch.followup") / "strategies/cn.toml")
                         .read_text(encoding="utf-8"))  # fmt: skip
    data["challenger"] = {"name": "behaviour-priority", "split": 0.5, "priority": "behaviour"}
    scored = parse_strategy(data, source="x.toml")
    assert scored.scores_cases and scored.priority_of("challenger") == "behaviour"
    assert scored.priority_of("champion") == scored.priority_of(None) == "dpd"
    assert scored.ladder_for(Segment(TriggerKind.MISSED_INSTALLMENT, "M1"), "challenger") == (
        scored.ladder_for(Segment(TriggerKind.MISSED_INSTALLMENT, "M1")))  # no ladder changed
    data["challenger"].pop("priority")
    with pytest.raises(FollowupError, match=r"x\.toml: challenger: give it ladders or priority"):
        parse_strategy(data, source="x.toml")
    data["challenger"]["priority"] = "random"
    with pytest.raises(FollowupError, match=r"x\.toml: challenger\.priority: Input should be"):
        parse_strategy(data, source="x.toml")
