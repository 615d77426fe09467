"""Value shapes shared by several messages."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Sku = Annotated[str, Field(min_length=1, max_length=64)]
Quantity = Annotated[int, Field(gt=0)]
MinorUnits = Annotated[int, Field(ge=0, description="Money in minor units (cents)")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]


class _Value(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class OrderLine(_Value):
    sku: Sku
    quantity: Quantity


class PricedLine(_Value):
    sku: Sku
    quantity: Quantity
    unit_price: MinorUnits


class ShippingAddress(_Value):
    name: str
    line1: str
    line2: str | None = None
    city: str
    postal_code: str
    country: str


LocationCode = Annotated[
    str, Field(min_length=1, max_length=64, description="A stock location's code")
]
DEFAULT_LOCATION = "default"


class Allocation(_Value):
    """What one stock location sends of an order (one parcel)."""

    location: LocationCode
    lines: Annotated[list[OrderLine], Field(min_length=1)]
    # The ISO countries the location ships to (None: everywhere), so the order can
    # tell whether a new address is still served.
    serves: list[str] | None = None


class Parcel(_Value):
    """A parcel of an order: which location sends which lines."""

    fulfillment_id: str
    location: LocationCode
    lines: Annotated[list[OrderLine], Field(min_length=1)]


ReturnCondition = Literal["resellable", "damaged"]


class ReturnLine(_Value):
    """Units a customer sends back, and the location they left from (where they go
    back to)."""

    sku: Sku
    quantity: Quantity
    location: LocationCode = DEFAULT_LOCATION


class ReceivedLine(_Value):
    """Units the warehouse took in from a return, and in which state."""

    sku: Sku
    quantity: Annotated[int, Field(ge=0)]
    condition: ReturnCondition


class ReturnedLine(_Value):
    """Received units going back to a location's books."""

    sku: Sku
    quantity: Quantity
    location: LocationCode = DEFAULT_LOCATION
    condition: ReturnCondition
