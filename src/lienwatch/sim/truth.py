"""Ground truth: the labelled events of a simulated portfolio, and what detectors should raise."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from lienwatch.sim.book import LoanPlan
from lienwatch.sim.payments import Delinquency
from lienwatch.sim.records import Profile, TruthEvent
from lienwatch.sim.stories import Story
from lienwatch.sim.tracks import TrackFacts

_EXPECTED_ALERTS: dict[Profile, frozenset[str]] = {
    Profile.ON_TIME: frozenset(),
    Profile.LATE_THEN_CURES: frozenset({"bucket_changed"}),
    Profile.SLIDES_INTO_DEFAULT: frozenset({"bucket_changed"}),
    Profile.SECONDARY_PLEDGE: frozenset({"long_stay", "risk_zone_visit", "device_offline"}),
    # The removed wired tracker never reports again: it is offline as well as removed.
    Profile.TRACKER_REMOVED: frozenset(
        {"power_cut", "device_removed", "tracker_mismatch", "device_offline"}
    ),
    Profile.MOVES_PROVINCE: frozenset({"left_region", "night_relocation", "address_mismatch"}),
    Profile.FRAUD_RING: frozenset({"shared_contacts", "cluster"}),
}


def expected_alerts(profile: Profile | str) -> frozenset[str]:
    """The alert types a detector suite should raise for a loan of ``profile``.

    GPS profiles map to collateral-monitor alerts, delinquency profiles to the servicing
    ``bucket_changed`` event, fraud rings to ring detection; ``on_time`` expects none. A
    ``tracker_removed`` car without a wireless tracker cannot show ``tracker_mismatch``.

    Raises:
        ValueError: ``profile`` is not a :class:`~lienwatch.sim.records.Profile` value.
    """
    try:
        return _EXPECTED_ALERTS[Profile(profile)]
    except ValueError:
        raise ValueError(f"profile: unknown profile {profile!r}") from None


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(int(epoch), tz=UTC)


def _local_midnight(day: date, time_zone: str) -> datetime:
    return datetime.combine(day, time(), ZoneInfo(time_zone)).astimezone(UTC)


def telemetry_events(plan: LoanPlan, story: Story, facts: TrackFacts, v: int) -> list[TruthEvent]:
    """The GPS-visible events of one loan (pledge, removal, move, ring cluster)."""
    loan, vin = plan.loan.ref, plan.vehicle.vin
    events: list[TruthEvent] = []
    if story.pledge:
        p = story.pledge
        wired_end = facts.wired_end.get(v)
        events.append(
            TruthEvent(
                "secondary_pledge",
                loan,
                vin,
                _utc(facts.arrive[v, p.day]),
                _utc(wired_end) if wired_end else None,
                plan.wired.device_id,
                {
                    "zone_id": p.zone.zone_id,
                    "category": p.zone.category,
                    "zone_name": p.zone.name,
                    "centre": [round(p.zone.lon, 6), round(p.zone.lat, 6)],
                    "radius_m": round(p.zone.radius_m, 1),
                    "wireless_continues": bool(plan.wireless and p.wireless_continues),
                },
            )
        )
        if wired_end:
            events.append(
                TruthEvent(
                    "device_offline",
                    loan,
                    vin,
                    _utc(wired_end),
                    None,
                    plan.wired.device_id,
                    {"kind": "wired"},
                )
            )
        if plan.wireless and v in facts.wireless_end:
            events.append(
                TruthEvent(
                    "device_offline",
                    loan,
                    vin,
                    _utc(facts.wireless_end[v]),
                    None,
                    plan.wireless.device_id,
                    {"kind": "wireless"},
                )
            )
    if story.removal:
        r = story.removal
        alarm = _utc(facts.day_epoch[r.day] + r.second)
        events.append(
            TruthEvent(
                "device_removed",
                loan,
                vin,
                alarm,
                None,
                plan.wired.device_id,
                {
                    "alarm": "power_cut",
                    "alarm_time": alarm.isoformat(),
                    "wireless_device": plan.wireless.device_id if plan.wireless else None,
                },
            )
        )
        if v in facts.wired_end:
            events.append(
                TruthEvent(
                    "device_offline",
                    loan,
                    vin,
                    _utc(facts.wired_end[v]),
                    None,
                    plan.wired.device_id,
                    {"kind": "wired"},
                )
            )
    if story.move:
        m = story.move
        events.append(
            TruthEvent(
                "moved_province",
                loan,
                vin,
                _utc(facts.depart[v, m.day]),
                _utc(facts.arrive[v, m.day]),
                plan.wired.device_id,
                {
                    "from_province": plan.city.province_code,
                    "to_province": m.city.province_code,
                    "from_city": plan.city.name_en,
                    "to_city": m.city.name_en,
                    "new_home": [round(m.home_lon, 6), round(m.home_lat, 6)],
                },
            )
        )
    if story.cluster:
        c = story.cluster
        events.append(
            TruthEvent(
                "cluster",
                loan,
                vin,
                _utc(facts.arrive[v, c.day]),
                _utc(facts.depart[v, c.day + c.days]),
                plan.wired.device_id,
                {"ring_id": c.ring_id, "centre": [round(c.centre_lon, 6), round(c.centre_lat, 6)]},
            )
        )
    return events


def loan_events(plan: LoanPlan, story: Story, delinquency: Delinquency | None) -> list[TruthEvent]:
    """The non-GPS events of one loan: ring membership and delinquency."""
    loan, vin, tz = plan.loan.ref, plan.vehicle.vin, plan.loan.time_zone
    events: list[TruthEvent] = []
    if plan.ring_id:
        events.append(
            TruthEvent(
                "fraud_ring",
                loan,
                vin,
                _local_midnight(plan.loan.disbursed_on, tz),
                None,
                None,
                {
                    "ring_id": plan.ring_id,
                    "shared": list(story.shared),
                    "borrower_ref": plan.borrower.ref,
                },
            )
        )
    if delinquency:
        details = {
            "first_missed_due": delinquency.first_missed_due.isoformat(),
            "missed_installments": delinquency.missed_installments,
        }
        if delinquency.last_payment_on:
            details["last_payment_on"] = delinquency.last_payment_on.isoformat()
        end = None
        if delinquency.cured_on:
            details["cured_on"] = delinquency.cured_on.isoformat()
            end = _local_midnight(delinquency.cured_on, tz)
        events.append(
            TruthEvent(
                delinquency.label,
                loan,
                vin,
                _local_midnight(delinquency.first_missed_due, tz),
                end,
                None,
                details,
            )
        )
    return events
