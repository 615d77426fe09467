"""Return parcels: the order service's commands (issue a label, call the return off)
and the warehouse's receipt. A return is locked with its id while it is handled,
whether or not it exists yet; the rules are `ReturnParcel`'s."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from oms_contracts import shipping as msgs
from oms_contracts.common import ShippingAddress
from oms_shipping.domain.model import Address, ShippingError
from oms_shipping.domain.returns import AnnouncedLine, ReceivedLine, ReturnParcel
from oms_shipping.handlers.shipments import new_tracking_number
from oms_shipping.handlers.unit_of_work import ShippingUnitOfWork


class ReturnNotFound(ShippingError):
    code = "return_not_found"

    def __init__(self, return_id: str) -> None:
        super().__init__(f"No return {return_id}")


def _address(address: ShippingAddress) -> Address:
    return Address(**address.model_dump())


async def create_return_label(command: msgs.CreateReturnLabel, uow: ShippingUnitOfWork) -> None:
    """A label for an approved return; asked again, the same answer again (the same
    label, or the cancellation that came first)."""
    async with uow:
        existing = await uow.returns.get(command.return_id, for_update=True)
        if existing is not None:
            existing.label_asked_again()
        else:
            uow.returns.add(
                ReturnParcel.with_label(
                    return_id=command.return_id,
                    order_id=command.order_id,
                    lines=[
                        AnnouncedLine(line.sku, line.quantity, line.location)
                        for line in command.lines
                    ],
                    pickup_address=_address(command.shipping_address),
                    tracking_number=new_tracking_number(),
                )
            )
        await uow.commit()


async def cancel_return(command: msgs.CancelReturn, uow: ShippingUnitOfWork) -> None:
    """Call the return off, unless its goods arrived (then the receipt is the answer);
    remembered if it comes before the label request."""
    async with uow:
        existing = await uow.returns.get(command.return_id, for_update=True)
        if existing is not None:
            existing.cancel()
        else:
            uow.returns.add(
                ReturnParcel.cancelled_before_label(
                    return_id=command.return_id, order_id=command.order_id
                )
            )
        await uow.commit()


async def receive(
    return_id: str, items: Sequence[ReceivedLine], uow: ShippingUnitOfWork
) -> ReturnParcel:
    """The warehouse books in the returned parcel: what arrived, in which state."""
    async with uow:
        parcel = await uow.returns.get(return_id, for_update=True)
        if parcel is None:
            raise ReturnNotFound(return_id)
        parcel.receive(items, datetime.now(UTC))
        await uow.commit()
    return parcel
