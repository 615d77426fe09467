"""One handler per command the inventory service accepts."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from oms_contracts import Message
from oms_contracts import inventory as msgs
from oms_contracts.common import OrderLine
from oms_inventory.domain.model import (
    GoodsAlreadyShipped,
    NothingReserved,
    Products,
    ReturnCondition,
    ReturnedUnits,
)
from oms_inventory.handlers.stock import ProductNotFound, UnknownLocation, receive_stock
from oms_inventory.handlers.unit_of_work import InventoryUnitOfWork

log = logging.getLogger(__name__)


async def reserve_stock(command: msgs.ReserveStock, uow: InventoryUnitOfWork) -> None:
    async with uow:
        reservation = await uow.reservations.for_order(command.order_id)
        requested = _requested(command.lines)
        # Products are needed only the first time; a repeat gets the first answer.
        products = (
            {} if reservation.exists else await uow.products.get_many(requested, for_update=True)
        )
        reservation.request(
            requested, products, datetime.now(UTC) + uow.reservation_ttl, command.country
        )
        await uow.commit()


async def release_stock(command: msgs.ReleaseStock, uow: InventoryUnitOfWork) -> None:
    async with uow:
        reservation = await uow.reservations.for_order(command.order_id)
        products = await uow.products.get_many(reservation.held_skus, for_update=True)
        try:
            reservation.cancel(products)
        except GoodsAlreadyShipped:
            log.error("release refused: the goods already shipped")
        await uow.commit()


async def commit_stock(command: msgs.CommitStock, uow: InventoryUnitOfWork) -> None:
    async with uow:
        reservation = await uow.reservations.for_order(command.order_id)
        products = await uow.products.get_many(reservation.held_skus, for_update=True)
        try:
            reservation.ship(products, command.location, command.fulfillment_id)
        except NothingReserved:
            log.error("nothing reserved to ship", extra={"location": command.location})
        await uow.commit()


async def adjust_reservation(command: msgs.AdjustReservation, uow: InventoryUnitOfWork) -> None:
    async with uow:
        reservation = await uow.reservations.for_order(command.order_id)
        requested = _requested(command.lines)
        # Only stock already held can change into other stock.
        products = (
            await uow.products.get_many({*requested, *reservation.held_skus}, for_update=True)
            if reservation.holds_stock
            else {}
        )
        reservation.change_lines(requested, products, command.country)
        await uow.commit()


async def restock(command: msgs.Restock, uow: InventoryUnitOfWork) -> None:
    """A supplier system reports a delivery."""
    try:
        await receive_stock(command.sku, command.quantity, command.reference, uow, command.location)
    except (ProductNotFound, UnknownLocation) as unknown:
        # Retrying will not create them: say so loudly, keep the queue moving.
        log.error(
            "restock for an unknown SKU or location",
            extra={"sku": command.sku, "location": command.location, "error": str(unknown)},
        )


async def return_stock(command: msgs.ReturnStock, uow: InventoryUnitOfWork) -> None:
    """Goods of a customer return arrived: booked at their locations, once per
    return; asked again, it answers what it booked the first time."""
    lines = [
        ReturnedUnits(line.sku, line.quantity, ReturnCondition(line.condition), line.location)
        for line in command.lines
    ]
    async with uow:
        # The stock first, locked as every stock change locks it: a second command
        # for the same return waits here for the first, then finds it booked.
        products = await uow.products.get_many({line.sku for line in lines}, for_update=True)
        booking = await uow.stock_returns.for_return(command.return_id, command.order_id)
        if not booking.booked:
            await _stocked_where_returned(lines, products, uow)
        booking.book(lines, products)
        await uow.commit()


async def _stocked_where_returned(
    lines: list[ReturnedUnits], products: Products, uow: InventoryUnitOfWork
) -> None:
    """Give each product a stock record at the locations its units came back to (a
    location it was never stocked at gets one). A product or location the inventory
    does not know cannot take anything: the command fails (and, retried in vain,
    waits in the dead letters for an operator), booking nothing."""
    for sku, location in sorted({(line.sku, line.location) for line in lines}):
        product = products.get(sku)
        if product is None:
            raise ProductNotFound(sku)
        if not await uow.products.open_level(product, location):
            raise UnknownLocation(location)


def _requested(lines: list[OrderLine]) -> dict[str, int]:
    requested: dict[str, int] = {}
    for line in lines:
        requested[line.sku] = requested.get(line.sku, 0) + line.quantity
    return requested


HANDLERS: dict[type[Message], Callable[..., Awaitable[None]]] = {
    msgs.ReserveStock: reserve_stock,
    msgs.ReleaseStock: release_stock,
    msgs.CommitStock: commit_stock,
    msgs.Restock: restock,
    msgs.AdjustReservation: adjust_reservation,
    msgs.ReturnStock: return_stock,
}
