"""The product catalogue: which servicing rules apply to a loan's product code.

Products are configuration (``[products.<code>]`` tables in ``lienwatch.toml``); a code with no
table of its own gets the ``[products.default]`` rules, or the built-in defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from lienwatch.domain.money import parse_yuan
from lienwatch.servicing.product import Overpayment, Product

DEFAULT_CODE = "default"
_INTEGER_KEYS = ("grace_days", "charge_off_dpd")
_YUAN_KEYS = ("late_fee", "tolerance")
_RATIO_KEYS = ("penalty_multiple", "recovery_rate")


class ProductCatalogue:
    """Product rules by code, with a default for codes that have no rules of their own."""

    def __init__(self, products: Mapping[str, Product] | None = None) -> None:
        self._products = dict(products or {})
        self.default = self._products.pop(DEFAULT_CODE, Product(name=DEFAULT_CODE))

    def get(self, code: str) -> Product:
        return self._products.get(code) or replace(self.default, name=code)

    @classmethod
    def from_tables(cls, tables: Mapping[str, Mapping[str, Any]]) -> ProductCatalogue:
        """Parse ``{code: {key: value}}`` tables; an error names ``products.<code>.<key>``.

        Keys: ``grace_days``, ``charge_off_dpd`` (integers); ``late_fee``, ``tolerance`` (yuan);
        ``penalty_multiple``, ``recovery_rate`` (decimals); ``overpayment`` (``credit``,
        ``reduce-term``, ``reduce-installment``); ``settle_at_payoff`` (boolean). A product's
        unset keys take the default product's values.
        """
        base = _parse(DEFAULT_CODE, tables.get(DEFAULT_CODE, {}), Product(name=DEFAULT_CODE))
        products = {DEFAULT_CODE: base}
        for code, table in tables.items():
            if code != DEFAULT_CODE:
                products[code] = _parse(code, table, replace(base, name=code))
        return cls(products)


def _parse(code: str, table: Mapping[str, Any], base: Product) -> Product:
    known = {*_INTEGER_KEYS, *_YUAN_KEYS, *_RATIO_KEYS, "overpayment", "settle_at_payoff"}
    changes: dict[str, Any] = {}
    for key, value in table.items():
        where = f"products.{code}.{key}"
        if key not in known:
            raise ValueError(f"{where}: unknown key; expected one of {', '.join(sorted(known))}")
        if key in _INTEGER_KEYS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{where}: must be an integer, got {value!r}")
            changes[key] = value
        elif key in _YUAN_KEYS:
            changes[key] = parse_yuan(str(value), field=where)
        elif key == "settle_at_payoff":
            if not isinstance(value, bool):
                raise ValueError(f"{where}: must be true or false, got {value!r}")
            changes[key] = value
        elif key in _RATIO_KEYS:
            try:
                changes[key] = Fraction(Decimal(str(value)))
            except (InvalidOperation, ValueError):
                raise ValueError(f"{where}: must be a decimal number, got {value!r}") from None
        else:
            try:
                changes[key] = Overpayment(value)
            except ValueError:
                choices = ", ".join(o.value for o in Overpayment)
                raise ValueError(f"{where}: must be one of {choices}, got {value!r}") from None
    try:
        return replace(base, **changes)
    except ValueError as exc:
        raise ValueError(f"products.{code}: {exc}") from None
