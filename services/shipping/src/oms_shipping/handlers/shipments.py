"""Use cases behind the shipping API: dispatch by warehouse staff, carrier events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oms_shipping.db.unit_of_work import ShippingUnitOfWork
from oms_shipping.domain.model import Shipment, TrackingEvent
from oms_shipping.handlers.outgoing import commit_shipment, new_tracking_number


class ShipmentNotFound(Exception):
    pass


class NotThisParcel(Exception):
    """The event names another parcel's tracking number than the shipment's."""


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
        await commit_shipment(uow, shipment)
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
        await commit_shipment(uow, shipment)
    return shipment


async def fail(shipment_id: str, reason: str, uow: ShippingUnitOfWork) -> Shipment:
    async with uow:
        shipment = await uow.shipments.get(shipment_id, for_update=True)
        if shipment is None:
            raise ShipmentNotFound(shipment_id)
        shipment.fail(reason)
        await commit_shipment(uow, shipment)
    return shipment
