"""Money as an integer number of fen (分, CNY minor units).

Storage and vectorized code carry ``int`` fen; :class:`~decimal.Decimal` appears only at the
edges (parsing user input, display). Floats never hold money.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FEN_PER_YUAN = 100
_CENT = Decimal("0.01")


class MoneyError(ValueError):
    """A value that cannot be an amount of money."""


def parse_yuan(text: str | Decimal | int, *, field: str = "amount") -> int:
    """Parse ``"1234.56"`` (yuan, at most two decimals) into fen.

    Raises :class:`MoneyError` naming ``field`` for anything else: more than two decimals,
    non-numbers, infinities.
    """
    try:
        value = Decimal(str(text).strip().replace(",", ""))
    except InvalidOperation:
        raise MoneyError(f"{field}: {text!r} is not a number") from None
    if not value.is_finite():
        raise MoneyError(f"{field}: {text!r} is not a finite amount")
    if value != value.quantize(_CENT):
        raise MoneyError(f"{field}: {text!r} has more than two decimals")
    return int(value * FEN_PER_YUAN)


def to_yuan(fen: int) -> Decimal:
    """Fen as a two-decimal :class:`Decimal` in yuan."""
    return (Decimal(int(fen)) / FEN_PER_YUAN).quantize(_CENT)


def format_yuan(fen: int) -> str:
    """Fen as ``"1234.56"``: the string form used in JSON output."""
    return str(to_yuan(fen))


def round_fen(value: Decimal) -> int:
    """Round an exact fen amount to a whole fen, half up (the rounding rule of schedules)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


CURRENCY = "CNY"


def require_currency(code: str, *, field: str = "currency") -> None:
    """Refuse any currency but CNY: amounts in fen only make sense in yuan."""
    if code != CURRENCY:
        raise MoneyError(f"{field}: only {CURRENCY} is supported, got {code!r}")


def div_round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, in exact integer arithmetic.

    Both are integers and ``denominator`` is positive; the same formula written with numpy
    ``//`` over int64 arrays gives identical results, which is what keeps the vectorized
    paths equal to the exact ones.
    """
    return (2 * numerator + denominator) // (2 * denominator)
