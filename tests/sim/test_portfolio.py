"""Behaviour of a small generated portfolio: ranges, ids, tracks and each profile's signature."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from lienwatch.domain.geo import haversine_m
from lienwatch.domain.schedule import Method
from lienwatch.servicing.engine import loan_state
from lienwatch.servicing.product import LoanTerms, Payment, Product
from lienwatch.sim import identity
from lienwatch.sim.book import TERMS
from lienwatch.sim.generate import SimConfig, generate
from lienwatch.sim.payments import schedule_of
from lienwatch.sim.places import PROVINCES, load_cities, province_codes
from lienwatch.sim.records import Portfolio, Profile
from lienwatch.sim.zones import ZONE_CATEGORIES

from .test_identity import luhn_valid

SHANGHAI = timedelta(hours=8)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def fixes_of(portfolio: Portfolio, device_id: str) -> tuple[np.ndarray, ...]:
    p = portfolio.positions
    mask = p.device_id == device_id
    return p.time[mask], p.lat[mask], p.lon[mask], p.alarms[mask], p.valid[mask]


def loans_by_profile(portfolio: Portfolio, profile: Profile) -> list:
    return [loan for loan in portfolio.loans if portfolio.truth.profiles[loan.ref] is profile]


def devices_of(portfolio: Portfolio, vin: str) -> dict[str, str]:
    return {d.kind: d.device_id for d in portfolio.devices if d.vehicle_vin == vin}


def test_sizes_and_profile_counts(portfolio: Portfolio) -> None:
    assert len(portfolio.loans) == len(portfolio.vehicles) == 100
    assert len({v.vin for v in portfolio.vehicles}) == 100
    counts = defaultdict(int)
    for profile in portfolio.truth.profiles.values():
        counts[profile] += 1
    assert counts[Profile.ON_TIME] == 70 and counts[Profile.SECONDARY_PLEDGE] == 4
    assert counts[Profile.FRAUD_RING] == 3
    assert 30_000 < len(portfolio.positions) < 80_000


def test_loan_products_are_realistic(portfolio: Portfolio) -> None:
    vehicles = {v.vin: v for v in portfolio.vehicles}
    for loan in portfolio.loans:
        assert 3_000_000 <= loan.principal <= 30_000_000
        assert loan.term in TERMS
        assert Decimal("0.06") <= loan.annual_rate <= Decimal("0.24")
        ltv = loan.principal / vehicles[loan.vehicle_vin].purchase_price
        assert 0.5 <= ltv <= 0.85 + 1e-9
        assert (portfolio.as_of - loan.disbursed_on).days <= 3 * 366
        assert schedule_of_last_due(portfolio, loan) >= portfolio.as_of
    methods = {loan.method for loan in generate(SimConfig(loans=300, days=14)).loans}
    assert methods == {"annuity", "equal-principal", "interest-only"}


def schedule_of_last_due(portfolio: Portfolio, loan) -> object:
    from lienwatch.domain.calendar import add_months

    return add_months(loan.disbursed_on, loan.term)


def test_identifiers_are_valid(portfolio: Portfolio) -> None:
    abbreviations = {a for a, _ in PROVINCES.values()}
    for b in portfolio.borrowers:
        assert re.fullmatch(r"1[3-9]\d{9}", b.phone)
        if b.kind == "person":
            assert len(b.id_number) == 18
            assert b.id_number[-1] == identity.resident_id_check(b.id_number[:17])
            assert b.id_number[:2] == b.province_code
        else:
            assert b.id_number[-1] == identity.uscc_check(b.id_number[:17])
        assert b.address.startswith(PROVINCES[b.province_code][1][:2])
    for v in portfolio.vehicles:
        assert v.vin[8] == identity.vin_check(v.vin) and not set(v.vin) & set("IOQ")
        assert v.plate[0] in abbreviations and len(v.plate) in (7, 8)
    ids = [d.device_id for d in portfolio.devices]
    assert len(set(ids)) == len(ids)
    for d in portfolio.devices:
        if d.protocol == "gt06":
            assert len(d.device_id) == 15 and luhn_valid(d.device_id)
        else:
            assert len(d.device_id) == 12 and d.device_id.isdigit()
    wired = [d for d in portfolio.devices if d.kind == "wired"]
    assert {d.vehicle_vin for d in wired} == {v.vin for v in portfolio.vehicles}


def test_positions_sorted_unique_and_plausible(portfolio: Portfolio) -> None:
    p = portfolio.positions
    ids = p.device_id.astype(str)
    same = ids[1:] == ids[:-1]
    assert np.all((ids[1:] > ids[:-1]) | (same & (p.time[1:] > p.time[:-1])))
    assert set(ids) <= {d.device_id for d in portfolio.devices}
    start = epoch(datetime(*portfolio.start.timetuple()[:3], tzinfo=UTC) - SHANGHAI)
    assert p.time.min() >= start and p.time.max() < start + 20 * 86_400
    assert np.all((p.lat > 18) & (p.lat < 54) & (p.lon > 73) & (p.lon < 136))
    assert np.all((p.speed_kmh >= 0) & (p.speed_kmh <= 135))
    assert np.all((p.course >= 0) & (p.course < 360))
    assert p.speed_kmh.max() > 40  # cars do drive


def test_normal_cars_stay_in_their_province(portfolio: Portfolio) -> None:
    borrowers = {b.ref: b for b in portfolio.borrowers}
    wired = {d.vehicle_vin: d.device_id for d in portfolio.devices if d.kind == "wired"}
    for loan in loans_by_profile(portfolio, Profile.ON_TIME):
        _, lat, lon, _, _ = fixes_of(portfolio, wired[loan.vehicle_vin])
        codes = province_codes(lat, lon)
        home = borrowers[loan.borrower_ref].province_code
        assert np.all(codes == home), loan.ref


def test_parked_noise_is_small(portfolio: Portfolio) -> None:
    p = portfolio.positions
    parked = (p.speed_kmh == 0) & p.valid
    ids, t, lat, lon = p.device_id[parked], p.time[parked], p.lat[parked], p.lon[parked]
    # Two consecutive parked fixes of a car that did not move in between lie within 60 m.
    same = (ids[1:] == ids[:-1]) & (t[1:] - t[:-1] <= 7_300)
    gaps = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])[same]
    assert np.median(gaps) < 30 and np.percentile(gaps, 50) > 2


def test_secondary_pledge_signature(portfolio: Portfolio) -> None:
    events = [e for e in portfolio.truth.events if e.label == "secondary_pledge"]
    assert len(events) == 4
    for event in events:
        t, lat, lon, _, _ = fixes_of(portfolio, event.device_id)
        assert event.end is not None and event.end - event.start >= timedelta(hours=72)
        inside = (t >= epoch(event.start)) & (t <= epoch(event.end))
        centre_lon, centre_lat = event.details["centre"]
        distances = haversine_m(centre_lat, centre_lon, lat[inside], lon[inside])
        assert inside.sum() >= 30 and distances.max() < 0.9 * event.details["radius_m"]
        assert t.max() == epoch(event.end)  # then the wired tracker is silent
        assert event.details["category"] in ZONE_CATEGORIES
        loan = next(x for x in portfolio.loans if x.ref == event.loan_ref)
        paid = [pay for pay in portfolio.payments if pay.loan_ref == loan.ref]
        assert all(pay.paid_on <= event.start.date() + timedelta(days=1) for pay in paid)


def test_tracker_removed_signature(portfolio: Portfolio) -> None:
    events = [e for e in portfolio.truth.events if e.label == "device_removed"]
    assert len(events) == 4
    for event in events:
        t, _, _, alarms, _ = fixes_of(portfolio, event.device_id)
        assert alarms[-1] == "power_cut" and t[-1] == epoch(event.start)
        assert set(alarms[:-1]) == {""}
        [offline] = [
            e
            for e in portfolio.truth.events
            if e.label == "device_offline" and e.device_id == event.device_id
        ]
        assert offline.start == event.start  # the removed wired tracker never reports again
        wireless = event.details["wireless_device"]
        if wireless:
            after = fixes_of(portfolio, wireless)[0] > epoch(event.start)
            assert after.any() or (portfolio.as_of - event.start.date()).days < 2


def test_moved_car_sleeps_in_the_new_province(portfolio: Portfolio) -> None:
    cities = {c.name_en: c for c in load_cities()}
    events = [e for e in portfolio.truth.events if e.label == "moved_province"]
    assert len(events) == 3
    for event in events:
        assert event.details["from_province"] != event.details["to_province"]
        t, lat, lon, _, valid = fixes_of(portfolio, event.device_id)
        local_hour = (t + 8 * 3_600) // 3_600 % 24
        nights = (t > epoch(event.end)) & (local_hour >= 1) & (local_hour < 5) & valid
        assert nights.any()
        city = cities[event.details["to_city"]]
        assert haversine_m(city.lat, city.lon, lat[nights], lon[nights]).max() < 30_000
        assert set(province_codes(lat[nights], lon[nights])) == {event.details["to_province"]}
        before = (t < epoch(event.start)) & (local_hour >= 1) & (local_hour < 5) & valid
        assert set(province_codes(lat[before], lon[before])) <= {event.details["from_province"]}


def test_fraud_ring_members_share_contacts(portfolio: Portfolio) -> None:
    borrowers = {b.ref: b for b in portfolio.borrowers}
    assert portfolio.truth.rings
    loans = {loan.borrower_ref: loan for loan in portfolio.loans}
    for members in portfolio.truth.rings.values():
        assert 3 <= len(members) <= 6
        people = [borrowers[m] for m in members]
        assert len({b.phone for b in people}) == 1 or len({b.address for b in people}) == 1
        dates = [loans[m].disbursed_on for m in members]
        assert (max(dates) - min(dates)).days <= 10
    others = [
        b
        for b in portfolio.borrowers
        if not any(b.ref in m for m in portfolio.truth.rings.values())
    ]
    assert len({b.phone for b in others}) == len(others)


def test_on_time_loans_pay_every_installment_due(portfolio: Portfolio) -> None:
    paid = defaultdict(int)
    by_loan = defaultdict(list)
    for payment in portfolio.payments:
        paid[payment.loan_ref] += payment.amount
        by_loan[payment.loan_ref].append(payment)
    for loan in loans_by_profile(portfolio, Profile.ON_TIME):
        due = sum(row.payment for row in schedule_of_plan(loan) if row.due_date < portfolio.as_of)
        assert paid[loan.ref] == due, loan.ref
        received = [Payment(p.external_id, p.paid_on, p.amount) for p in by_loan[loan.ref]]
        assert loan_state(terms_of(loan), Product(), received, portfolio.as_of).dpd == 0
    assert len({p.external_id for p in portfolio.payments}) == len(portfolio.payments)


def terms_of(loan) -> LoanTerms:
    return LoanTerms(
        loan.ref,
        loan.principal,
        loan.annual_rate,
        loan.term,
        Method(loan.method),
        loan.disbursed_on,
    )


def schedule_of_plan(loan):
    return schedule_of(type("Plan", (), {"loan": loan})())


@pytest.mark.parametrize("profile", [Profile.LATE_THEN_CURES, Profile.SLIDES_INTO_DEFAULT])
def test_delinquency_profiles(portfolio: Portfolio, profile: Profile) -> None:
    label = "delinquent" if profile is Profile.LATE_THEN_CURES else "default"
    for loan in loans_by_profile(portfolio, profile):
        event = next(
            e for e in portfolio.truth.events if e.loan_ref == loan.ref and e.label == label
        )
        first_missed = datetime.fromisoformat(event.details["first_missed_due"]).date()
        rows = [r for r in schedule_of_plan(loan) if r.due_date < portfolio.as_of]
        payments = [p for p in portfolio.payments if p.loan_ref == loan.ref]
        paid = sum(p.amount for p in payments)
        assert not any(
            p.paid_on >= first_missed
            and p.paid_on < first_missed + timedelta(days=30)
            and p.amount >= max(r.payment for r in rows)
            for p in payments
            if profile is Profile.SLIDES_INTO_DEFAULT
        )
        if profile is Profile.LATE_THEN_CURES and "cured_on" not in event.details:
            # still behind on the business date: nothing paid since the first missed due
            assert event.end is None and all(p.paid_on < first_missed for p in payments)
        elif profile is Profile.LATE_THEN_CURES:
            cured = datetime.fromisoformat(event.details["cured_on"]).date()
            assert 30 <= (cured - first_missed).days <= 90
            # The cure pays the missed installments and the penalty interest they ran up:
            # by the servicing rules the loan is current again.
            assert paid > sum(r.payment for r in rows)
            received = [Payment(p.external_id, p.paid_on, p.amount) for p in payments]
            assert loan_state(terms_of(loan), Product(), received, portfolio.as_of).dpd == 0
        else:
            assert paid < sum(r.payment for r in rows)
            assert max(p.paid_on for p in payments) < portfolio.as_of - timedelta(days=20)


def test_risk_zones(portfolio: Portfolio) -> None:
    zones = portfolio.truth.risk_zones
    assert zones["type"] == "FeatureCollection"
    cities = {b.city for b in portfolio.borrowers}
    assert {f["properties"]["city"] for f in zones["features"]} == cities
    for feature in zones["features"]:
        ring = feature["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1] and len(ring) >= 16
        assert feature["properties"]["category"] in ZONE_CATEGORIES
        assert 100 <= feature["properties"]["radius_m"] <= 300


def test_progress_is_reported_a_few_dozen_times() -> None:
    calls: list[tuple[str, int, int]] = []
    generate(SimConfig(loans=20, days=14), progress=lambda *args: calls.append(args))
    assert {c[0] for c in calls} == {"book", "payments", "tracks"}
    assert 10 <= len(calls) <= 60
    assert all(done <= total for _, done, total in calls)


def test_payments_carry_their_payer_and_some_come_from_third_parties(portfolio):
    from lienwatch.sim.payments import bank_account

    owner = {loan.ref: loan.borrower_ref for loan in portfolio.loans}
    names = {b.ref: b.name for b in portfolio.borrowers}
    assert all(p.payer_account and p.payer_name for p in portfolio.payments)
    own = [p for p in portfolio.payments
           if p.payer_account == bank_account(owner[p.loan_ref])]  # fmt: skip
    assert all(p.payer_name == names[owner[p.loan_ref]] for p in own)
    others = [p for p in portfolio.payments if p not in own]
    assert 0 < len({p.loan_ref for p in others}) < 0.15 * len(owner)
    assert all(p.payer_name != names[owner[p.loan_ref]] for p in others)
    borrowers: dict[str, set[str]] = {}
    for p in others:
        borrowers.setdefault(p.payer_account, set()).add(owner[p.loan_ref])
    assert max(len(b) for b in borrowers.values()) >= 2  # a broker pays for several
