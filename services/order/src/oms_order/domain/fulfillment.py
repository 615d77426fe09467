"""The parcels of an order: what each stock location sends, and what became of it.

Inventory decides which locations send what (the allocation); the order keeps one
parcel per location and follows each on its own: its dispatch note, its departure
(which commits that location's stock and captures that parcel's amount), its
delivery. A parcel's id is derived from the order and the location, so every
service names the same parcel the same way without asking.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

DEFAULT_LOCATION = "default"
_PARCEL_IDS = uuid.UUID("6c0f6d4e-3b1a-4a4c-9d53-2f1b7c0e8a11")


def fulfillment_id(order_id: str, location: str) -> str:
    """The parcel's id. From the default location it is the order's own id: that is
    the one parcel every order had before there were locations, and what a message
    naming no parcel means."""
    if location == DEFAULT_LOCATION:
        return order_id
    return str(uuid.uuid5(_PARCEL_IDS, f"{order_id}/{location}"))


class ParcelStatus(StrEnum):
    PENDING = "pending"  # allocated; no dispatch note yet
    CREATED = "created"  # the warehouse has its dispatch note
    DISPATCHED = "dispatched"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    FAILED = "failed"  # could not be made, or lost on the way


# Still in the warehouse: may be dispatched, or stopped.
OPEN = frozenset({ParcelStatus.PENDING, ParcelStatus.CREATED})
# Left the warehouse and reached, or is on its way to, the customer.
LEFT = frozenset({ParcelStatus.DISPATCHED, ParcelStatus.DELIVERED})


@dataclass
class Fulfillment:
    id: str
    location: str
    lines: list[tuple[str, int]]
    # The countries the location ships to (None: everywhere), as inventory said.
    serves: frozenset[str] | None = None
    status: ParcelStatus = ParcelStatus.PENDING
    shipment_id: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    dispatched_at: datetime | None = None
    # Settlement of a parcel that left: its stock committed, its amount captured.
    stock_committed: bool = False
    captured_amount: int = 0
    # An operator confirmed its settlement by hand (see Order.force_compensation).
    settled_by_hand: bool = False
    # Shipping was asked to stop it; its answer is awaited.
    cancel_requested: bool = False

    @classmethod
    def allocated(
        cls,
        order_id: str,
        location: str,
        lines: Iterable[tuple[str, int]],
        serves: Iterable[str] | None = None,
    ) -> Fulfillment:
        return cls(
            id=fulfillment_id(order_id, location),
            location=location,
            lines=list(lines),
            serves=frozenset(serves) if serves is not None else None,
        )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def has_left(self) -> bool:
        return self.status in LEFT

    @property
    def is_settled(self) -> bool:
        return self.settled_by_hand or (self.stock_committed and self.captured_amount > 0)

    def ships_to(self, country: str) -> bool:
        return self.serves is None or country in self.serves

    def amount(self, unit_prices: Mapping[str, int | None]) -> int:
        return sum(quantity * (unit_prices.get(sku) or 0) for sku, quantity in self.lines)

    def record_created(self, shipment_id: str) -> None:
        self.shipment_id = shipment_id
        if self.status is ParcelStatus.PENDING:
            self.status = ParcelStatus.CREATED

    def record_dispatched(
        self, shipment_id: str, carrier: str, tracking_number: str, now: datetime
    ) -> bool:
        """True when this is news (the parcel had not left before)."""
        self.shipment_id = shipment_id
        self.carrier = carrier
        self.tracking_number = tracking_number
        self.cancel_requested = False
        if self.has_left:
            return False
        self.status = ParcelStatus.DISPATCHED
        self.dispatched_at = now
        return True
