"""The loan book: borrowers, vehicles, trackers and loans, with each loan's profile.

Everything is drawn from one :class:`numpy.random.Generator`; the order of draws is fixed, so
the same generator state gives the same book.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from lienwatch.domain.calendar import add_months
from lienwatch.domain.geo import offset_m
from lienwatch.domain.schedule import Method
from lienwatch.sim import identity
from lienwatch.sim.places import PROVINCES, City, load_cities, safely_in
from lienwatch.sim.records import Profile, SimBorrower, SimDevice, SimLoan, SimVehicle

# (make, model, energy, new price range in yuan, world manufacturer identifier)
CATALOGUE = (
    ("Volkswagen", "Lavida", "ice", (100_000, 150_000), "LSV"),
    ("Volkswagen", "Sagitar", "ice", (120_000, 180_000), "LFV"),
    ("Toyota", "Corolla", "ice", (110_000, 160_000), "LVG"),
    ("Honda", "Accord", "ice", (170_000, 260_000), "LHG"),
    ("Nissan", "Sylphy", "ice", (100_000, 150_000), "LGB"),
    ("Buick", "Excelle GT", "ice", (90_000, 130_000), "LSG"),
    ("Geely", "Emgrand", "ice", (70_000, 110_000), "L6T"),
    ("Changan", "CS75 Plus", "ice", (110_000, 160_000), "LS5"),
    ("Haval", "H6", "ice", (100_000, 160_000), "LGW"),
    ("BMW", "3 Series", "ice", (290_000, 400_000), "LBV"),
    ("Mercedes-Benz", "C-Class", "ice", (320_000, 420_000), "LE4"),
    ("BYD", "Qin Plus DM-i", "nev", (80_000, 140_000), "LGX"),
    ("BYD", "Song Plus", "nev", (150_000, 200_000), "LGX"),
    ("Tesla", "Model 3", "nev", (230_000, 300_000), "LRW"),
    ("Wuling", "Hongguang Mini EV", "nev", (40_000, 60_000), "LZW"),
)
TERMS = (12, 24, 36, 48, 60)
_TERM_WEIGHTS = (0.12, 0.25, 0.38, 0.1, 0.15)
MIN_PRINCIPAL, MAX_PRINCIPAL = 3_000_000, 30_000_000  # fen: 30,000–300,000 CNY
# Maximum loan-to-value by (energy, condition), after the older regulatory caps.
_MAX_LTV = {
    ("ice", "new"): 0.80,
    ("nev", "new"): 0.85,
    ("ice", "used"): 0.70,
    ("nev", "used"): 0.70,
}
MIN_LTV = 0.50
_PLATE_LETTERS = "BCDEFGHJKLMNPRS"
_DEVICE_MODELS = {
    ("jt808", "wired"): "JT808-W2",
    ("jt808", "wireless"): "JT808-B4",
    ("gt06", "wired"): "GT06N",
    ("gt06", "wireless"): "GT-W300",
}
_IMEI_TACS = ("86239103", "86813204", "35392811")


@dataclass(slots=True)
class LoanPlan:
    """Everything the simulator decides about one loan before simulating days."""

    loan: SimLoan
    borrower: SimBorrower
    vehicle: SimVehicle
    city: City
    profile: Profile
    wired: SimDevice
    wireless: SimDevice | None
    ring_id: str | None = None


def borrower_cities() -> list[City]:
    """Cities borrowers are drawn from: those whose centre is clearly inside their province."""
    cities = load_cities()
    inside = safely_in([c.lat for c in cities], [c.lon for c in cities],
                       [c.province_code for c in cities])  # one lookup for all  # fmt: skip
    return [city for city, ok in zip(cities, inside.tolist(), strict=True) if ok]


def home_and_work(rng: np.random.Generator, city: City) -> tuple[float, float, float, float]:
    """A home within ~12 km of the centre and a workplace 2–20 km from home, both in-province."""
    for spread in (12_000, 6_000, 2_000, 500):
        radius = np.sqrt(rng.uniform(0, 1, 16)) * spread
        bearing = rng.uniform(0, 2 * np.pi, 16)
        home_lat, home_lon = offset_m(
            np.full(16, city.lat),
            np.full(16, city.lon),
            radius * np.sin(bearing),
            radius * np.cos(bearing),
        )
        commute = np.clip(rng.lognormal(np.log(7_000), 0.6, 16), 2_000, 20_000)
        heading = rng.uniform(0, 2 * np.pi, 16)
        work_lat, work_lon = offset_m(
            home_lat, home_lon, commute * np.sin(heading), commute * np.cos(heading)
        )
        ok = safely_in(home_lat, home_lon, city.province_code) & safely_in(
            work_lat, work_lon, city.province_code
        )
        if ok.any():
            i = int(np.argmax(ok))
            return float(home_lat[i]), float(home_lon[i]), float(work_lat[i]), float(work_lon[i])
    return city.lat, city.lon, *offset_m(city.lat, city.lon, 2_000.0, 0.0)


def vehicle_for(
    rng: np.random.Generator,
    borrower: SimBorrower,
    city: City,
    disbursed: date,
    used_vins: set[str],
    used_plates: set[str],
) -> tuple[SimVehicle, float]:
    """A financed vehicle and the loan-to-value the lender accepted for it."""
    make, model, energy, (low, high), wmi = CATALOGUE[int(rng.integers(len(CATALOGUE)))]
    condition = "used" if rng.random() < 0.2 else "new"
    price_yuan = rng.uniform(low, high) * (rng.uniform(0.45, 0.8) if condition == "used" else 1.0)
    if price_yuan * _MAX_LTV[(energy, condition)] * 100 < MIN_PRINCIPAL:
        # Too cheap to finance the smallest loan used: the buyer takes a new one instead.
        condition, price_yuan = "new", low
    price = round(price_yuan / 100) * 10_000  # whole hundreds of yuan, in fen
    ltv = rng.uniform(max(MIN_LTV, MIN_PRINCIPAL / price), _MAX_LTV[(energy, condition)])
    purchase = disbursed - timedelta(days=int(rng.integers(0, 8)))
    model_year = purchase.year - (int(rng.integers(1, 6)) if condition == "used" else 0)
    while (vin := identity.vin(rng, wmi, model_year)) in used_vins:
        pass
    used_vins.add(vin)
    letter = "A" if city.capital else str(rng.choice(list(_PLATE_LETTERS)))
    abbreviation = PROVINCES[city.province_code][0]
    while (plate := identity.plate(rng, abbreviation, letter, energy == "nev")) in used_plates:
        pass
    used_plates.add(plate)
    vehicle = SimVehicle(vin, plate, make, model, energy, condition, price, purchase, borrower.ref)
    return vehicle, float(ltv)


def principal_for(price: int, ltv: float) -> int:
    """The principal in fen: price × LTV rounded down to 100 yuan, at most the product maximum."""
    return min(max(int(price * ltv // 10_000) * 10_000, MIN_PRINCIPAL), MAX_PRINCIPAL)


def loan_terms(rng: np.random.Generator) -> tuple[int, Decimal, Method, str]:
    """Term, annual rate, repayment method and product name of one loan."""
    term = int(rng.choice(TERMS, p=_TERM_WEIGHTS))
    draw = rng.random()
    method = (
        Method.ANNUITY
        if draw < 0.85
        else (Method.EQUAL_PRINCIPAL if draw < 0.96 else Method.INTEREST_ONLY)
    )
    # APR 6–24 %, skewed towards the lower half as in bank-affiliated auto finance.
    rate = Decimal(int(600 + 1800 * rng.beta(1.6, 3.0))) / Decimal(10_000)
    product = {
        Method.ANNUITY: "standard",
        Method.EQUAL_PRINCIPAL: "declining",
        Method.INTEREST_ONLY: "balloon",
    }[method]
    return term, rate, method, f"auto-{product}-{term}m"


def seasoning_window(as_of: date, term: int, min_months: int) -> tuple[date, date]:
    """Disbursement dates that keep the loan alive at ``as_of``: at most ~3 years on book."""
    oldest = add_months(as_of, -min(36, term - 1))
    newest = add_months(as_of, -min_months) - timedelta(days=1)
    return oldest, max(newest, oldest)


def random_date(rng: np.random.Generator, first: date, last: date) -> date:
    """A uniformly random date in [first, last]."""
    return first + timedelta(days=int(rng.integers(0, (last - first).days + 1)))


def make_devices(
    rng: np.random.Generator,
    vin: str,
    wireless: bool,
    used_ids: set[str],
    wireless_interval_s: int,
    parked_interval_s: int,
    fitted_on: date | None = None,
) -> tuple[SimDevice, SimDevice | None]:
    """The wired tracker and, if ``wireless``, the battery-powered one of a vehicle."""
    devices: list[SimDevice] = []
    for kind in ("wired", "wireless")[: 2 if wireless else 1]:
        protocol = "jt808" if rng.random() < 0.55 else "gt06"
        while True:
            device_id = (
                identity.jt808_terminal_phone(rng)
                if protocol == "jt808"
                else identity.imei(rng, str(rng.choice(_IMEI_TACS)))
            )
            if device_id not in used_ids:
                break
        used_ids.add(device_id)
        interval = parked_interval_s if kind == "wired" else wireless_interval_s
        model = _DEVICE_MODELS[(protocol, kind)]
        devices.append(SimDevice(device_id, protocol, kind, model, vin, interval, fitted_on))
    return devices[0], devices[1] if wireless else None


# Months a loan must have been on book for its story to play out before the business date.
_MIN_SEASONING = {
    Profile.LATE_THEN_CURES: 6,
    Profile.SLIDES_INTO_DEFAULT: 8,
    Profile.TRACKER_REMOVED: 1,
    Profile.MOVES_PROVINCE: 1,
}
RING_SIZES = (3, 6)


@dataclass(frozen=True, slots=True)
class BookSpec:
    """What :func:`build_book` needs from the simulator configuration."""

    loans: int
    start: date
    as_of: date
    profile_mix: Mapping[Profile, float]
    wireless_share: float
    company_share: float
    parked_interval_s: int
    wireless_interval_s: int


def profile_counts(mix: Mapping[Profile, float], loans: int) -> dict[Profile, int]:
    """Loans per profile by largest remainder; a ring profile too small for a ring goes on time."""
    quotas = {p: share * loans for p, share in mix.items()}
    counts = {p: int(q) for p, q in quotas.items()}
    by_remainder = sorted(quotas, key=lambda p: (counts[p] - quotas[p], p.value))
    for p in by_remainder[: loans - sum(counts.values())]:
        counts[p] += 1
    if 0 < counts.get(Profile.FRAUD_RING, 0) < RING_SIZES[0]:
        counts[Profile.ON_TIME] = counts.get(Profile.ON_TIME, 0) + counts.pop(Profile.FRAUD_RING)
    return counts


def ring_sizes(rng: np.random.Generator, members: int) -> list[int]:
    """Split ``members`` ring loans into groups of 3–6 (the remainder joins the last groups)."""
    sizes: list[int] = []
    left = members
    while left >= RING_SIZES[0]:
        size = min(int(rng.integers(RING_SIZES[0], RING_SIZES[1] + 1)), left)
        if 0 < left - size < RING_SIZES[0]:
            size = left if left <= RING_SIZES[1] else left - RING_SIZES[0]
        sizes.append(size)
        left -= size
    return sizes


class _BookBuilder:
    def __init__(self, rng: np.random.Generator, spec: BookSpec) -> None:
        self.rng = rng
        self.spec = spec
        self.cities = borrower_cities()
        weights = np.sqrt([c.population for c in self.cities])
        self.city_p = weights / weights.sum()
        self.used_vins: set[str] = set()
        self.used_plates: set[str] = set()
        self.used_devices: set[str] = set()
        self.used_phones: set[str] = set()
        self.plans: list[LoanPlan] = []
        self.borrowers: list[SimBorrower] = []

    def city(self) -> City:
        return self.cities[int(self.rng.choice(len(self.cities), p=self.city_p))]

    def phone(self) -> str:
        while (phone := identity.mobile_number(self.rng)) in self.used_phones:
            pass
        self.used_phones.add(phone)
        return phone

    def person(
        self, city: City, disbursed: date, *, phone: str | None = None, address: str | None = None
    ) -> SimBorrower:
        rng = self.rng
        male = bool(rng.random() < 0.75)
        birth = disbursed - timedelta(days=int(rng.integers(22 * 365, 58 * 365)))
        home_lat, home_lon, work_lat, work_lon = home_and_work(rng, city)
        province_zh = PROVINCES[city.province_code][1]
        borrower = SimBorrower(
            ref=f"B{len(self.borrowers) + 1:06d}",
            kind="person",
            name=identity.person_name(rng),
            id_number=identity.resident_id(rng, city.province_code, birth, male),
            phone=phone or self.phone(),
            address=address or identity.street_address(rng, province_zh, city.name_zh),
            city=city.name_en,
            province_code=city.province_code,
            home_lat=home_lat,
            home_lon=home_lon,
            work_lat=work_lat,
            work_lon=work_lon,
        )
        self.borrowers.append(borrower)
        return borrower

    def company(self, city: City) -> SimBorrower:
        rng = self.rng
        home_lat, home_lon, work_lat, work_lon = home_and_work(rng, city)
        province_zh = PROVINCES[city.province_code][1]
        borrower = SimBorrower(
            ref=f"B{len(self.borrowers) + 1:06d}",
            kind="company",
            name=identity.company_name(rng, city.name_zh),
            id_number=identity.credit_code(rng, city.province_code),
            phone=self.phone(),
            address=identity.street_address(rng, province_zh, city.name_zh),
            city=city.name_en,
            province_code=city.province_code,
            home_lat=home_lat,
            home_lon=home_lon,
            work_lat=work_lat,
            work_lon=work_lon,
        )
        self.borrowers.append(borrower)
        return borrower

    def disbursement(self, profile: Profile, term: int) -> date:
        spec = self.spec
        if profile is Profile.SECONDARY_PLEDGE:
            # Pledged cars are typically pledged soon after the loan: book them around the window.
            return random_date(
                self.rng, spec.start - timedelta(days=60), spec.as_of - timedelta(days=12)
            )
        first, last = seasoning_window(spec.as_of, term, _MIN_SEASONING.get(profile, 0))
        return random_date(self.rng, first, last)

    def add_loan(
        self,
        profile: Profile,
        borrower: SimBorrower,
        city: City,
        disbursed: date | None = None,
        ring_id: str | None = None,
    ) -> None:
        rng = self.rng
        term, rate, method, product = loan_terms(rng)
        disbursed = disbursed or self.disbursement(profile, term)
        vehicle, ltv = vehicle_for(rng, borrower, city, disbursed, self.used_vins, self.used_plates)
        principal = principal_for(vehicle.purchase_price, ltv)
        ref = f"L{len(self.plans) + 1:06d}"
        loan = SimLoan(
            ref,
            borrower.ref,
            vehicle.vin,
            product,
            principal,
            rate,
            term,
            method.value,
            disbursed,
            city.province_code,
            upfront_fee=int(principal * 0.01 // 100) * 100,
            # registered with the city's vehicle office on the day of disbursement (先抵押后放款)
            registration_certificate=f"{city.province_code}{ref[1:]:0>10}",
            registration_authority=f"{city.name_zh}车辆管理所",
            registered_on=disbursed,
        )
        wired, wireless = make_devices(
            rng,
            vehicle.vin,
            bool(rng.random() < self.spec.wireless_share),
            self.used_devices,
            self.spec.wireless_interval_s,
            self.spec.parked_interval_s,
            # Fitted before disbursement; the simulated history begins at the start for every
            # car, so the fitting day is never later than that.
            min(disbursed, self.spec.start),
        )
        self.plans.append(
            LoanPlan(loan, borrower, vehicle, city, profile, wired, wireless, ring_id)
        )

    def add_ring(self, ring_id: str, size: int) -> None:
        rng, spec = self.rng, self.spec
        city = self.city()
        anchor = random_date(rng, spec.start - timedelta(days=150), spec.as_of - timedelta(days=45))
        shares_phone = bool(rng.random() < 0.6)
        shares_address = not shares_phone or bool(rng.random() < 0.5)
        phone = self.phone() if shares_phone else None
        province_zh = PROVINCES[city.province_code][1]
        address = (
            identity.street_address(rng, province_zh, city.name_zh) if shares_address else None
        )
        for _ in range(size):
            disbursed = min(
                anchor + timedelta(days=int(rng.integers(0, 10))), spec.as_of - timedelta(days=30)
            )
            borrower = self.person(city, disbursed, phone=phone, address=address)
            self.add_loan(Profile.FRAUD_RING, borrower, city, disbursed, ring_id)


def build_book(
    rng: np.random.Generator, spec: BookSpec
) -> tuple[list[SimBorrower], list[LoanPlan]]:
    """Borrowers and loan plans: rings first, then persons and fleet companies."""
    builder = _BookBuilder(rng, spec)
    counts = profile_counts(spec.profile_mix, spec.loans)
    for n, size in enumerate(ring_sizes(rng, counts.pop(Profile.FRAUD_RING, 0)), start=1):
        builder.add_ring(f"R{n:04d}", size)
    profiles = [p for p, count in sorted(counts.items()) for _ in range(count)]
    order = rng.permutation(len(profiles))
    i = 0
    while i < len(order):
        city = builder.city()
        if rng.random() < spec.company_share:
            fleet = min(int(rng.integers(2, 7)), len(order) - i)
            borrower = builder.company(city)
        else:
            fleet = 1
            borrower = builder.person(city, spec.as_of)
        for k in order[i : i + fleet]:
            builder.add_loan(profiles[k], borrower, city)
        i += fleet
    return builder.borrowers, builder.plans
