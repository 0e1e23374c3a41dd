from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lienwatch.sim import identity


def luhn_valid(number: str) -> bool:
    digits = [int(c) for c in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def test_known_check_digits() -> None:
    assert identity.resident_id_check("11010519491231002") == "X"  # GB 11643 worked example
    assert identity.uscc_check("91350100M000100Y4") == "3"  # published sample code
    assert identity.vin_check("1M8GDM9AXKP042788") == "X"  # ISO 3779 worked example
    assert identity.luhn_check("49015420323751") == "8"  # IMEI 490154203237518


@settings(max_examples=50)
@given(st.text("0123456789", min_size=14, max_size=14))
def test_luhn_check_completes_a_valid_number(body: str) -> None:
    assert luhn_valid(body + identity.luhn_check(body))


@settings(max_examples=30)
@given(st.integers(0, 2**32))
def test_generated_ids_are_well_formed(seed: int) -> None:
    rng = np.random.default_rng(seed)
    imei = identity.imei(rng, "86239103")
    assert len(imei) == 15 and luhn_valid(imei)
    phone = identity.jt808_terminal_phone(rng)
    assert len(phone) == 12 and phone.isdigit()
    mobile = identity.mobile_number(rng)
    assert len(mobile) == 11 and mobile[0] == "1" and mobile[1] in "3456789"
    vin = identity.vin(rng, "LSV", 2025)
    assert len(vin) == 17 and not set(vin) & set("IOQ")
    assert vin[8] == identity.vin_check(vin)
    code = identity.credit_code(rng, "44")
    assert len(code) == 18 and code[-1] == identity.uscc_check(code[:17])
    assert code[8:17][-1] == identity.org_code_check(code[8:16])
