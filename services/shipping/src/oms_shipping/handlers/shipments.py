"""Use cases behind the shipping API: dispatch by warehouse staff, carrier events."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from oms_shipping.domain.model import Shipment, ShippingError, TrackingEvent
from oms_shipping.handlers.unit_of_work import ShippingUnitOfWork


class ShipmentNotFound(ShippingError):
    code = "shipment_not_found"

    def __init__(self, what: str) -> None:
        super().__init__(f"No shipment {what}")


def new_tracking_number() -> str:
    return f"SIM{secrets.randbelow(10**12):012d}"


class NotThisParcel(ShippingError):
    """The event names another parcel's tracking number than the shipment's."""

    code = "not_this_parcel"

    def __init__(self, shipment_id: str) -> None:
        super().__init__("tracking_number is not the tracking number of this shipment")


# Seen webhook ids are kept far longer than the signature's 5-minute window, beyond
# which a replay is refused for its timestamp anyway.
WEBHOOK_ID_RETENTION = timedelta(hours=24)


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
    shipment_id: str,
    tracking_number: str,
    event: TrackingEvent,
    uow: ShippingUnitOfWork,
    *,
    webhook_id: str | None,
) -> Shipment:
    """Apply a carrier event to the parcel it names. `webhook_id`: the delivery's
    id; one already acted on is acknowledged without effect."""
    now = datetime.now(UTC)
    async with uow:
        shipment = await uow.shipments.get(shipment_id, for_update=True)
        if shipment is None:
            raise ShipmentNotFound(shipment_id)
        if shipment.tracking_number != tracking_number:
            raise NotThisParcel(shipment_id)
        if webhook_id is not None:
            await uow.shipments.forget_webhooks_before(now - WEBHOOK_ID_RETENTION)
            if not await uow.shipments.remember_webhook(webhook_id, shipment_id):
                await uow.commit()
                return shipment
        seen = await uow.shipments.has_tracking_event(shipment_id, event)
        shipment.record_tracking(event, seen_before=seen, now=now)
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
