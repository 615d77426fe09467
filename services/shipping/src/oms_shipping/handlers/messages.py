"""One handler per command the shipping service accepts."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from oms_contracts import Message
from oms_contracts import shipping as msgs
from oms_shipping.db.unit_of_work import ShippingUnitOfWork
from oms_shipping.domain.model import Address, Line, Shipment
from oms_shipping.handlers.outgoing import commit_shipment, new_tracking_number
from oms_shipping.settings import ShippingSettings


def create_shipment_handler(
    settings: ShippingSettings,
) -> Callable[[msgs.CreateShipment, ShippingUnitOfWork], Awaitable[None]]:
    async def create_shipment(command: msgs.CreateShipment, uow: ShippingUnitOfWork) -> None:
        async with uow:
            shipment = await uow.shipments.get_by_order(command.order_id, for_update=True)
            if shipment is not None:
                shipment.repeat_notices()
                await commit_shipment(uow, shipment)
                return
            shipment = Shipment.create(
                shipment_id=str(uuid.uuid4()),
                order_id=command.order_id,
                lines=[Line(line.sku, line.quantity) for line in command.lines],
                address=Address(**command.shipping_address.model_dump()),
            )
            if not settings.serves(shipment.address.country if shipment.address else ""):
                shipment.fail("destination_not_served")
            elif settings.auto_dispatch:
                shipment.dispatch(
                    carrier=settings.carrier_name,
                    tracking_number=new_tracking_number(),
                    now=datetime.now(UTC),
                )
            await commit_shipment(uow, shipment, new=True)

    return create_shipment


async def cancel_shipment(command: msgs.CancelShipment, uow: ShippingUnitOfWork) -> None:
    async with uow:
        shipment = await uow.shipments.get_by_order(command.order_id, for_update=True)
        if shipment is None:
            shipment = Shipment.cancelled_before_creation(
                shipment_id=str(uuid.uuid4()), order_id=command.order_id
            )
            await commit_shipment(uow, shipment, new=True)
            return
        shipment.cancel()
        await commit_shipment(uow, shipment)


def handlers(settings: ShippingSettings) -> dict[type[Message], Callable[..., Awaitable[None]]]:
    return {
        msgs.CreateShipment: create_shipment_handler(settings),
        msgs.CancelShipment: cancel_shipment,
    }
