"""Check characters of the identifiers an auto loan carries: the resident identity number
(GB 11643-1999, ISO 7064 MOD 11-2) and the VIN (ISO 3779 / GB 16735 position 9). The simulator
makes valid ones with them; the pre-loan checks (``lienwatch.risk.checks``) verify them."""

from __future__ import annotations

_ID_WEIGHTS = tuple(2 ** (17 - i) % 11 for i in range(17))
_ID_CHECK = "10X98765432"
#: VIN transliteration: letters to digits (I, O and Q never appear in a VIN).
VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def resident_id_check(first17: str) -> str:
    """The GB 11643-1999 check character (``0``–``9`` or ``X``) of an 18-digit resident id."""
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def vin_check(vin: str) -> str:
    """The ISO 3779 / GB 16735 check character at position 9 of a 17-character VIN (its own
    position weighs 0, so the VIN may carry any character there)."""
    total = sum(VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)
