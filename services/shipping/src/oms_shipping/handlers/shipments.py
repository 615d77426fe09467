"""Use cases behind the shipping API: dispatch by warehouse staff, carrier events."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from oms_shipping.domain.model import Shipment, ShippingError, TrackingEvent
from oms_shipping.handlers.unit_of_work import ShippingUnitOfWork


class ShipmentNotFound(ShippingError):
    code = "shipment_not_found"

    def __init__(self, what: str) -> None:
        super().__init__(f"No shipment {what}")


def new_tracking_number() -> str:
    return f"SIM{secrets.randbelow(10**12):012d}"


async def dispatch(shipment_id: str, carrier: str, uow: ShippingUnitOfWork) -> Shipment:
    async with uow:
        shipment = await uow.shipments.get(shipment_id, for_update=True)
        if shipment is None:
            raise ShipmentNotFound(shipment_id)
        shipment.dispatch(
            carrier=carrier, tracking_number=new_tracking_number(), now=datetime.now(UTC)
        )
        await uow.commit()
    return shipment


async def record_tracking_event(
    shipment_id: str, event: TrackingEvent, uow: ShippingUnitOfWork
) -> Shipment:
    async with uow:
        shipment = await uow.shipments.get(shipment_id, for_update=True)
        if shipment is None:
            raise ShipmentNotFound(shipment_id)
        seen = await uow.shipments.has_tracking_event(shipment_id, event)
        shipment.record_tracking(event, seen_before=seen)
        await uow.commit()
    return shipment


async def fail(shipment_id: str, reason: str, uow: ShippingUnitOfWork) -> Shipment:
    async with uow:
        shipment = await uow.shipments.get(shipment_id, for_update=True)
        if shipment is None:
            raise ShipmentNotFound(shipment_id)
        shipment.fail(reason)
        await uow.commit()
    return shipment
