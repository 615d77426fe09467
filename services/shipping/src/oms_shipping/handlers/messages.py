"""One handler per command the shipping service accepts. Every command about an
order's parcels reads all of them (`OrderParcels`, the order locked while it is
handled); the rules are theirs. Returns' commands are in `returns.py`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from oms_contracts import Message
from oms_contracts import order as order_msgs
from oms_contracts import shipping as msgs
from oms_contracts.common import OrderLine, ShippingAddress
from oms_contracts.reasons import StatusReason
from oms_shipping.domain.model import (
    Address,
    Line,
    ParcelPlan,
    ShipmentStatus,
    parcel_id,
)
from oms_shipping.handlers.returns import cancel_return, create_return_label
from oms_shipping.handlers.shipments import new_tracking_number
from oms_shipping.handlers.unit_of_work import ShippingUnitOfWork
from oms_shipping.settings import ShippingSettings


def _lines(lines: list[OrderLine]) -> list[Line]:
    return [Line(line.sku, line.quantity) for line in lines]


def _address(address: ShippingAddress) -> Address:
    return Address(**address.model_dump())


def create_shipment_handler(
    settings: ShippingSettings,
) -> Callable[[msgs.CreateShipment, ShippingUnitOfWork], Awaitable[None]]:
    async def create_shipment(command: msgs.CreateShipment, uow: ShippingUnitOfWork) -> None:
        async with uow:
            parcels = await uow.shipments.of_order(command.order_id)
            address = _address(command.shipping_address)
            parcel = parcels.ask_for(
                fulfillment_id=parcel_id(command.order_id, command.fulfillment_id),
                location=command.location,
                lines=_lines(command.lines),
                address=address,
            )
            if parcel is not None:
                if not settings.serves(address.country):
                    parcel.fail(StatusReason.DESTINATION_NOT_SERVED)
                elif settings.auto_dispatch and parcel.status is ShipmentStatus.CREATED:
                    parcel.dispatch(
                        carrier=settings.carrier_name,
                        tracking_number=new_tracking_number(),
                        now=datetime.now(UTC),
                    )
            await uow.commit()

    return create_shipment


async def cancel_shipment(command: msgs.CancelShipment, uow: ShippingUnitOfWork) -> None:
    async with uow:
        parcels = await uow.shipments.of_order(command.order_id)
        parcels.cancel(command.fulfillment_id)
        await uow.commit()


async def change_address(command: msgs.ChangeShippingAddress, uow: ShippingUnitOfWork) -> None:
    async with uow:
        parcels = await uow.shipments.of_order(command.order_id)
        parcels.change_address(_address(command.shipping_address))
        await uow.commit()


async def hold_shipment(command: msgs.HoldShipment, uow: ShippingUnitOfWork) -> None:
    async with uow:
        parcels = await uow.shipments.of_order(command.order_id)
        parcels.hold()
        await uow.commit()


async def update_shipment(command: msgs.UpdateShipment, uow: ShippingUnitOfWork) -> None:
    async with uow:
        parcels = await uow.shipments.of_order(command.order_id)
        parcels.update(
            _lines(command.lines),
            [
                ParcelPlan(parcel.fulfillment_id, parcel.location, tuple(_lines(parcel.lines)))
                for parcel in command.parcels
            ],
        )
        await uow.commit()


async def release_shipment(command: msgs.ReleaseShipment, uow: ShippingUnitOfWork) -> None:
    async with uow:
        parcels = await uow.shipments.of_order(command.order_id)
        parcels.release()
        await uow.commit()


async def order_deleted(event: order_msgs.OrderDeleted, uow: ShippingUnitOfWork) -> None:
    """The customer's personal data goes: where the parcels went, and where the
    returned ones came from."""
    async with uow:
        parcels = await uow.shipments.of_order(event.order_id)
        parcels.erase_personal_data()
        for returned in await uow.returns.of_order(event.order_id):
            returned.erase_personal_data()
        await uow.commit()


def handlers(settings: ShippingSettings) -> dict[type[Message], Callable[..., Awaitable[None]]]:
    return {
        msgs.CreateShipment: create_shipment_handler(settings),
        msgs.CancelShipment: cancel_shipment,
        msgs.ChangeShippingAddress: change_address,
        msgs.HoldShipment: hold_shipment,
        msgs.UpdateShipment: update_shipment,
        msgs.ReleaseShipment: release_shipment,
        msgs.CreateReturnLabel: create_return_label,
        msgs.CancelReturn: cancel_return,
        order_msgs.OrderDeleted: order_deleted,
    }
