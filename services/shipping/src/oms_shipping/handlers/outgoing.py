"""Shipment domain events -> messages, committed with the state change; given to
the service's unit of work at bootstrap (`ShipmentEvents`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from oms_contracts import Message
from oms_contracts import shipping as msgs
from oms_contracts.common import OrderLine, ShippingAddress
from oms_runtime.messaging.events import EventMap
from oms_shipping.domain import model
from oms_shipping.domain.model import Shipment


class ShipmentEvents(EventMap[Shipment, Any]):
    def messages(self, event: model.ShipmentEvent, source: Shipment) -> Sequence[Message]:
        return [message_for(event)]

    def correlation_id(self, source: Shipment) -> str:
        return source.order_id


def message_for(event: model.ShipmentEvent) -> Message:
    match event:
        case model.Created():
            return msgs.ShipmentCreated(order_id=event.order_id, shipment_id=event.shipment_id)
        case model.Dispatched():
            return msgs.ShipmentDispatched(
                order_id=event.order_id,
                shipment_id=event.shipment_id,
                carrier=event.carrier,
                tracking_number=event.tracking_number,
            )
        case model.Cancelled():
            return msgs.ShipmentCancelled(order_id=event.order_id, shipment_id=event.shipment_id)
        case model.Failed():
            return msgs.ShipmentFailed(
                order_id=event.order_id, shipment_id=event.shipment_id, reason=event.reason
            )
        case model.Held():
            return msgs.ShipmentHeld(order_id=event.order_id, shipment_id=event.shipment_id)
        case model.HoldRefused():
            return msgs.ShipmentHoldRefused(order_id=event.order_id, reason=event.reason)
        case model.Updated():
            return msgs.ShipmentUpdated(
                order_id=event.order_id,
                shipment_id=event.shipment_id,
                lines=[OrderLine(sku=line.sku, quantity=line.quantity) for line in event.lines],
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
        case model.Delivered():
            return msgs.ShipmentDelivered(
                order_id=event.order_id,
                shipment_id=event.shipment_id,
                carrier=event.carrier,
                tracking_number=event.tracking_number,
                delivered_at=event.delivered_at,
            )
    raise TypeError(f"no message for {event!r}")
