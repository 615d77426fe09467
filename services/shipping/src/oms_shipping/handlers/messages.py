"""One handler per command the shipping service accepts."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from oms_contracts import Message
from oms_contracts import order as order_msgs
from oms_contracts import shipping as msgs
from oms_contracts.reasons import StatusReason
from oms_shipping.domain.model import Address, Line, NotCreatedYet, Shipment
from oms_shipping.handlers.shipments import new_tracking_number
from oms_shipping.handlers.unit_of_work import ShippingUnitOfWork
from oms_shipping.settings import ShippingSettings


def create_shipment_handler(
    settings: ShippingSettings,
) -> Callable[[msgs.CreateShipment, ShippingUnitOfWork], Awaitable[None]]:
    async def create_shipment(command: msgs.CreateShipment, uow: ShippingUnitOfWork) -> None:
        async with uow:
            shipment = await uow.shipments.get_by_order(command.order_id, for_update=True)
            if shipment is not None:
                shipment.repeat_notices()
                await uow.commit()
                return
            shipment = Shipment.create(
                shipment_id=str(uuid.uuid4()),
                order_id=command.order_id,
                lines=[Line(line.sku, line.quantity) for line in command.lines],
                address=Address(**command.shipping_address.model_dump()),
            )
            if not settings.serves(shipment.address.country if shipment.address else ""):
                shipment.fail(StatusReason.DESTINATION_NOT_SERVED)
            elif settings.auto_dispatch:
                shipment.dispatch(
                    carrier=settings.carrier_name,
                    tracking_number=new_tracking_number(),
                    now=datetime.now(UTC),
                )
            uow.shipments.add(shipment)
            await uow.commit()

    return create_shipment


async def cancel_shipment(command: msgs.CancelShipment, uow: ShippingUnitOfWork) -> None:
    async with uow:
        shipment = await uow.shipments.get_by_order(command.order_id, for_update=True)
        if shipment is None:
            uow.shipments.add(
                Shipment.cancelled_before_creation(
                    shipment_id=str(uuid.uuid4()), order_id=command.order_id
                )
            )
        else:
            shipment.cancel()
        await uow.commit()


async def _existing(uow: ShippingUnitOfWork, order_id: str) -> Shipment:
    shipment = await uow.shipments.get_by_order(order_id, for_update=True)
    if shipment is None:
        # The creation request is still on its way (both were sent moments apart):
        # fail, so this message is retried after a delay.
        raise NotCreatedYet(order_id)
    return shipment


async def change_address(command: msgs.ChangeShippingAddress, uow: ShippingUnitOfWork) -> None:
    async with uow:
        shipment = await _existing(uow, command.order_id)
        shipment.change_address(Address(**command.shipping_address.model_dump()))
        await uow.commit()


async def hold_shipment(command: msgs.HoldShipment, uow: ShippingUnitOfWork) -> None:
    async with uow:
        shipment = await _existing(uow, command.order_id)
        shipment.hold()
        await uow.commit()


async def update_shipment(command: msgs.UpdateShipment, uow: ShippingUnitOfWork) -> None:
    async with uow:
        shipment = await _existing(uow, command.order_id)
        shipment.update_lines([Line(line.sku, line.quantity) for line in command.lines])
        await uow.commit()


async def release_shipment(command: msgs.ReleaseShipment, uow: ShippingUnitOfWork) -> None:
    async with uow:
        shipment = await _existing(uow, command.order_id)
        shipment.release()
        await uow.commit()


async def order_deleted(event: order_msgs.OrderDeleted, uow: ShippingUnitOfWork) -> None:
    async with uow:
        shipment = await uow.shipments.get_by_order(event.order_id, for_update=True)
        if shipment is not None:
            shipment.erase_personal_data()
        await uow.commit()


def handlers(settings: ShippingSettings) -> dict[type[Message], Callable[..., Awaitable[None]]]:
    return {
        msgs.CreateShipment: create_shipment_handler(settings),
        msgs.CancelShipment: cancel_shipment,
        msgs.ChangeShippingAddress: change_address,
        msgs.HoldShipment: hold_shipment,
        msgs.UpdateShipment: update_shipment,
        msgs.ReleaseShipment: release_shipment,
        order_msgs.OrderDeleted: order_deleted,
    }
