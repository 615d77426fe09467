"""Shipment domain events -> messages, committed with the state change."""

from __future__ import annotations

import dataclasses
import secrets

from oms_contracts import Message
from oms_contracts import shipping as msgs
from oms_contracts.common import OrderLine, ShippingAddress
from oms_shipping.db.unit_of_work import ShippingUnitOfWork
from oms_shipping.domain import model
from oms_shipping.domain.model import Shipment


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


async def commit_shipment(
    uow: ShippingUnitOfWork, shipment: Shipment, *, new: bool = False
) -> None:
    if new:
        await uow.shipments.add(shipment)
    else:
        await uow.shipments.save(shipment)
    for event in shipment.events:
        uow.publish(message_for(event), correlation_id=shipment.order_id)
    shipment.events.clear()
    await uow.commit()


def new_tracking_number() -> str:
    return f"SIM{secrets.randbelow(10**12):012d}"
