"""Shipping's domain events -> messages, committed with the state change; given to
the service's unit of work at bootstrap (`ShipmentEvents`). A parcel's events name
its fulfillment id and location; the answers about all of an order's parcels name
the order's lead parcel; a return parcel's events name the return."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from oms_contracts import Message
from oms_contracts import shipping as msgs
from oms_contracts.common import OrderLine, Parcel, ReceivedLine, ShippingAddress
from oms_runtime.messaging.events import EventMap
from oms_shipping.domain import model, returns
from oms_shipping.domain.model import OrderParcels, Shipment
from oms_shipping.domain.returns import ReturnParcel

Source = Shipment | OrderParcels | ReturnParcel


class ShipmentEvents(EventMap[Source, Any]):
    def messages(self, event: Any, source: Source) -> Sequence[Message]:
        if isinstance(source, ReturnParcel):
            return [return_message(event)]
        if isinstance(source, Shipment):
            return [parcel_message(event, source)]
        return [order_message(event)]

    def correlation_id(self, source: Source) -> str:
        return source.order_id


def parcel_message(event: model.ShipmentEvent, parcel: Shipment) -> Message:
    """What one parcel's event says, naming the parcel."""
    where = {
        "order_id": event.order_id,
        "shipment_id": event.shipment_id,
        "fulfillment_id": parcel.fulfillment_id,
        "location": parcel.location,
    }
    match event:
        case model.Created():
            return msgs.ShipmentCreated(**where)
        case model.Dispatched():
            return msgs.ShipmentDispatched(
                **where, carrier=event.carrier, tracking_number=event.tracking_number
            )
        case model.Cancelled():
            return msgs.ShipmentCancelled(**where)
        case model.Failed():
            return msgs.ShipmentFailed(**where, reason=event.reason)
        case model.Delivered():
            return msgs.ShipmentDelivered(
                **where,
                carrier=event.carrier,
                tracking_number=event.tracking_number,
                delivered_at=event.delivered_at,
            )
    raise TypeError(f"no message for {event!r} of a parcel")


def _lines(lines: Sequence[model.Line]) -> list[OrderLine]:
    return [OrderLine(sku=line.sku, quantity=line.quantity) for line in lines]


def order_message(event: model.ShipmentEvent) -> Message:
    """The one answer to what the order asked of all its parcels."""
    match event:
        case model.Held():
            return msgs.ShipmentHeld(order_id=event.order_id, shipment_id=event.shipment_id)
        case model.HoldRefused():
            return msgs.ShipmentHoldRefused(order_id=event.order_id, reason=event.reason)
        case model.Updated():
            return msgs.ShipmentUpdated(
                order_id=event.order_id,
                shipment_id=event.shipment_id,
                lines=_lines(event.lines),
                parcels=[
                    Parcel(
                        fulfillment_id=plan.fulfillment_id,
                        location=plan.location,
                        lines=_lines(plan.lines),
                    )
                    for plan in event.parcels
                ],
            )
        case model.Released():
            return msgs.ShipmentReleased(order_id=event.order_id, shipment_id=event.shipment_id)
        case model.AddressChangeRefused():
            return msgs.ShippingAddressChangeRefused(order_id=event.order_id, reason=event.reason)
        case model.AddressChanged():
            return msgs.ShippingAddressChanged(
                order_id=event.order_id,
                shipment_id=event.shipment_id,
                shipping_address=ShippingAddress(**dataclasses.asdict(event.address)),
            )
    raise TypeError(f"no message for {event!r} of an order's parcels")


def return_message(event: returns.ReturnEvent) -> Message:
    """What a return parcel's event says."""
    about = {"order_id": event.order_id, "return_id": event.return_id}
    match event:
        case returns.LabelCreated():
            return msgs.ReturnLabelCreated(
                **about, return_tracking_number=event.return_tracking_number
            )
        case returns.Received():
            return msgs.ReturnReceived(
                **about,
                lines=[
                    ReceivedLine(
                        sku=line.sku, quantity=line.quantity, condition=line.condition.value
                    )
                    for line in event.lines
                ],
            )
        case returns.Cancelled():
            return msgs.ReturnCancelled(**about)
    raise TypeError(f"no message for {event!r} of a return")
