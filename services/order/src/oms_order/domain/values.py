"""Values an order is made of."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Address:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None


ERASED_ADDRESS = Address(name="", line1="", city="", postal_code="", country="")


@dataclass
class OrderLine:
    sku: str
    quantity: int
    # Set by inventory when it reserves the stock (inventory owns prices).
    unit_price: int | None = None


def total_of(lines: list[OrderLine]) -> int | None:
    """What the lines cost (None until every line is priced)."""
    if any(line.unit_price is None for line in lines):
        return None
    return sum(line.quantity * (line.unit_price or 0) for line in lines)
