"""Commands the inventory service accepts and the events it publishes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from oms_contracts.common import (
    DEFAULT_LOCATION,
    Allocation,
    Currency,
    LocationCode,
    OrderLine,
    PricedLine,
    Quantity,
    ReturnedLine,
    Sku,
)
from oms_contracts.envelope import Command, Event


class ReserveStock(Command):
    """Reserve every line, all or nothing."""

    routing_key = "inventory.reserve_stock"
    order_id: str
    lines: Annotated[list[OrderLine], Field(min_length=1)]
    # The shipping address's country: only locations that ship there take part
    # (None: every location).
    country: str | None = None


class ReleaseStock(Command):
    """Compensation: give back whatever is reserved for the order."""

    routing_key = "inventory.release_stock"
    order_id: str
    reason: str


class CommitStock(Command):
    """The goods left the warehouse: turn the reservation into a decrement."""

    routing_key = "inventory.commit_stock"
    order_id: str
    # The parcel that left: its location's share of the reservation (None: all).
    location: LocationCode | None = None
    fulfillment_id: str | None = None


class Restock(Command):
    """Goods arrived from a supplier. `reference` (e.g. the delivery note number)
    makes it idempotent: the same delivery is never counted twice."""

    routing_key = "inventory.restock"
    sku: Sku
    quantity: Quantity
    reference: Annotated[str, Field(min_length=1, max_length=100)]
    location: LocationCode = DEFAULT_LOCATION


class StockReserved(Event):
    routing_key = "inventory.stock_reserved"
    order_id: str
    lines: list[PricedLine]
    currency: Currency
    # Which location sends what (one parcel each); empty from a single-location
    # inventory of earlier versions, which means one parcel from `default`.
    allocations: list[Allocation] = []


class StockReservationFailed(Event):
    routing_key = "inventory.stock_reservation_failed"
    order_id: str
    reason: str  # out_of_stock | unknown_sku | currency_mismatch
    skus: list[str]


class StockReleased(Event):
    routing_key = "inventory.stock_released"
    order_id: str


class StockCommitted(Event):
    routing_key = "inventory.stock_committed"
    order_id: str
    lines: list[OrderLine]
    location: LocationCode | None = None
    fulfillment_id: str | None = None


class LowStock(Event):
    routing_key = "inventory.low_stock"
    sku: Sku
    available: int
    low_stock_threshold: int
    location: LocationCode = DEFAULT_LOCATION


class ReplenishmentRequested(Event):
    routing_key = "inventory.replenishment_requested"
    sku: Sku
    quantity: Quantity
    location: LocationCode = DEFAULT_LOCATION


class Restocked(Event):
    routing_key = "inventory.restocked"
    sku: Sku
    quantity: Quantity
    on_hand: int
    reference: str | None = None
    location: LocationCode = DEFAULT_LOCATION


class ReservationExpired(Event):
    """A reservation outlived its time limit and was released; the saga is told so it
    can compensate what else the order holds."""

    routing_key = "inventory.reservation_expired"
    order_id: str


class AdjustReservation(Command):
    """The order's items changed: reserve the new lines instead of the old ones, all
    or nothing (the old reservation stays if the new one does not fit)."""

    routing_key = "inventory.adjust_reservation"
    order_id: str
    lines: Annotated[list[OrderLine], Field(min_length=1)]
    country: str | None = None


class ReservationAdjusted(Event):
    routing_key = "inventory.reservation_adjusted"
    order_id: str
    lines: list[PricedLine]
    currency: Currency
    allocations: list[Allocation] = []


class ReservationAdjustmentFailed(Event):
    routing_key = "inventory.reservation_adjustment_failed"
    order_id: str
    reason: str  # out_of_stock | unknown_sku | currency_mismatch | not_reserved
    skus: list[str]


class ReturnStock(Command):
    """Returned goods arrived: resellable units go back on hand where they left from,
    damaged ones are booked without becoming sellable."""

    routing_key = "inventory.return_stock"
    order_id: str
    return_id: str
    lines: Annotated[list[ReturnedLine], Field(min_length=1)]


class StockReturned(Event):
    routing_key = "inventory.stock_returned"
    order_id: str
    return_id: str
    lines: list[ReturnedLine]
