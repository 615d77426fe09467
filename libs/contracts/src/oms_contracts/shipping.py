"""Commands the shipping service accepts and the events it publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from oms_contracts.common import (
    DEFAULT_LOCATION,
    LocationCode,
    OrderLine,
    Parcel,
    ReceivedLine,
    ReturnLine,
    ShippingAddress,
)
from oms_contracts.envelope import Command, Event


class CreateShipment(Command):
    """Create the dispatch note for a paid order."""

    routing_key = "shipping.create_shipment"
    order_id: str
    lines: Annotated[list[OrderLine], Field(min_length=1)]
    shipping_address: ShippingAddress
    # One shipment per parcel (per stock location); None: the order's only parcel.
    fulfillment_id: str | None = None
    location: LocationCode = DEFAULT_LOCATION


class CancelShipment(Command):
    """Compensation: do not ship. Refused (by re-announcing the dispatch) if the
    parcel already left."""

    routing_key = "shipping.cancel_shipment"
    order_id: str
    reason: str
    # One parcel; None: every parcel of the order that has not left.
    fulfillment_id: str | None = None


class ChangeShippingAddress(Command):
    """Send the parcel elsewhere. Refused if it has already left."""

    routing_key = "shipping.change_address"
    order_id: str
    shipping_address: ShippingAddress


class ShipmentCreated(Event):
    routing_key = "shipping.shipment_created"
    order_id: str
    shipment_id: str
    fulfillment_id: str | None = None
    location: LocationCode = DEFAULT_LOCATION


class ShipmentDispatched(Event):
    routing_key = "shipping.shipment_dispatched"
    order_id: str
    shipment_id: str
    carrier: str
    tracking_number: str
    fulfillment_id: str | None = None
    location: LocationCode = DEFAULT_LOCATION


class ShipmentCancelled(Event):
    routing_key = "shipping.shipment_cancelled"
    order_id: str
    shipment_id: str
    fulfillment_id: str | None = None
    location: LocationCode = DEFAULT_LOCATION


class ShipmentFailed(Event):
    """The shipment cannot be made or was lost; the order is compensated."""

    routing_key = "shipping.shipment_failed"
    order_id: str
    shipment_id: str
    reason: str
    fulfillment_id: str | None = None
    location: LocationCode = DEFAULT_LOCATION


class ShipmentDelivered(Event):
    routing_key = "shipping.delivered"
    order_id: str
    shipment_id: str
    carrier: str
    tracking_number: str
    delivered_at: datetime
    fulfillment_id: str | None = None
    location: LocationCode = DEFAULT_LOCATION


class ShippingAddressChanged(Event):
    routing_key = "shipping.address_changed"
    order_id: str
    shipment_id: str
    shipping_address: ShippingAddress


class ShippingAddressChangeRefused(Event):
    routing_key = "shipping.address_change_refused"
    order_id: str
    reason: str


class HoldShipment(Command):
    """Keep the parcel in the warehouse while the order's items change."""

    routing_key = "shipping.hold_shipment"
    order_id: str


class UpdateShipment(Command):
    """The new lines of a held shipment; releases the hold."""

    routing_key = "shipping.update_shipment"
    order_id: str
    lines: Annotated[list[OrderLine], Field(min_length=1)]
    # The new parcels (one per location); empty: one parcel with `lines`.
    parcels: list[Parcel] = []


class ReleaseShipment(Command):
    """Compensation: release the hold, lines unchanged."""

    routing_key = "shipping.release_shipment"
    order_id: str


class ShipmentHeld(Event):
    routing_key = "shipping.shipment_held"
    order_id: str
    shipment_id: str


class ShipmentHoldRefused(Event):
    routing_key = "shipping.shipment_hold_refused"
    order_id: str
    reason: str


class ShipmentUpdated(Event):
    routing_key = "shipping.shipment_updated"
    order_id: str
    shipment_id: str
    lines: list[OrderLine]
    # Every parcel of the order as it now stands (an item change may move lines
    # between locations); empty from a single-parcel shipping of earlier versions.
    parcels: list[Parcel] = []


class ShipmentReleased(Event):
    routing_key = "shipping.shipment_released"
    order_id: str
    shipment_id: str


class CreateReturnLabel(Command):
    """An approved return: issue the customer a label to send the goods back with."""

    routing_key = "shipping.create_return_label"
    order_id: str
    return_id: str
    lines: Annotated[list[ReturnLine], Field(min_length=1)]
    # Where the parcel is picked up from (the order's shipping address).
    shipping_address: ShippingAddress


class CancelReturn(Command):
    """The return was called off before the goods arrived: void its label. If they
    arrived already, shipping answers with the receipt instead."""

    routing_key = "shipping.cancel_return"
    order_id: str
    return_id: str


class ReturnLabelCreated(Event):
    routing_key = "shipping.return_label_created"
    order_id: str
    return_id: str
    return_tracking_number: str


class ReturnReceived(Event):
    """The warehouse took the returned parcel in: what arrived, and in which state."""

    routing_key = "shipping.return_received"
    order_id: str
    return_id: str
    lines: list[ReceivedLine]


class ReturnCancelled(Event):
    routing_key = "shipping.return_cancelled"
    order_id: str
    return_id: str
