"""Orders with parcels for the shipping tests: shipment ids counted, so a test can
say which parcel an answer names."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime

from oms_shipping.domain.model import Address, Line, OrderParcels, Shipment

HOME = Address(name="Ada", line1="1 Main St", city="Berlin", postal_code="10115", country="DE")
OFFICE = Address(name="Ada", line1="9 Work Rd", city="Hamburg", postal_code="20095", country="DE")
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def counted_ids(prefix: str = "s") -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"{prefix}-{next(counter)}"


def order_with(*parcels: tuple[str, str, dict[str, int]], order_id: str = "o-1") -> OrderParcels:
    """An order whose parcels (fulfillment id, location, {sku: quantity}) were asked
    for, in this order, as shipments s-1, s-2, ...; their announcements cleared."""
    order = OrderParcels(order_id, [], new_id=counted_ids())
    for fulfillment_id, location, lines in parcels:
        order.ask_for(
            fulfillment_id=fulfillment_id,
            location=location,
            lines=[Line(sku, quantity) for sku, quantity in lines.items()],
            address=HOME,
        )
    settle(order)
    return order


def settle(order: OrderParcels) -> None:
    """Forget what was announced so far (it was sent)."""
    order.events.clear()
    for parcel in order.parcels:
        parcel.events.clear()


def announced(order: OrderParcels) -> list[object]:
    """Every parcel's events, then the order's answers, as the unit of work sends them."""
    return [event for parcel in order.parcels for event in parcel.events] + list(order.events)


def parcel(order: OrderParcels, fulfillment_id: str) -> Shipment:
    found = order.parcel(fulfillment_id)
    assert found is not None, f"no parcel {fulfillment_id}"
    return found


def dispatch(order: OrderParcels, fulfillment_id: str, tracking_number: str = "TRK-1") -> None:
    parcel(order, fulfillment_id).dispatch(
        carrier="simpost", tracking_number=tracking_number, now=NOW
    )
    settle(order)
