"""The allocation waterfall: which part of what is owed a payment settles first.

Across installments the oldest is always served first; within one installment the order of
the four components is a product setting (default penalty → fees → interest → principal).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Component(StrEnum):
    """A part of an installment that a payment can settle."""

    PENALTY = "penalty"  # 罚息
    FEE = "fee"  # late fee
    INTEREST = "interest"
    PRINCIPAL = "principal"


DEFAULT_ORDER = (Component.PENALTY, Component.FEE, Component.INTEREST, Component.PRINCIPAL)


@dataclass(frozen=True, slots=True)
class Waterfall:
    """The order in which a payment settles the components of one installment."""

    order: tuple[Component, ...] = DEFAULT_ORDER

    def __post_init__(self) -> None:
        if sorted(self.order) != sorted(Component) or len(self.order) != len(Component):
            names = ", ".join(c.value for c in Component)
            raise ValueError(f"waterfall: must name each of {names} exactly once, got {self.order}")

    @classmethod
    def parse(cls, text: str) -> Waterfall:
        """``"penalty,fee,interest,principal"`` → a :class:`Waterfall`."""
        try:
            order = tuple(Component(part.strip()) for part in text.split(","))
        except ValueError:
            raise ValueError(f"waterfall: unknown component in {text!r}") from None
        return cls(order)

    def settle(
        self, amount: int, owed: Mapping[Component, int]
    ) -> tuple[dict[Component, int], int]:
        """Spend up to ``amount`` fen on ``owed`` in this order.

        Returns what each component received and the amount left over.
        """
        received, left = fill_in_order(amount, [owed.get(c, 0) for c in self.order])
        return dict(zip(self.order, received, strict=True)), left


def fill_in_order(amount: int, owed: Sequence[int]) -> tuple[list[int], int]:
    """Settle ``owed`` amounts one after the other with ``amount``; return parts and rest."""
    parts: list[int] = []
    for due in owed:
        part = min(amount, due)
        parts.append(part)
        amount -= part
    return parts, amount
