"""One handler per command the inventory service accepts."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from oms_contracts import Message
from oms_contracts import inventory as msgs
from oms_contracts.common import OrderLine, PricedLine
from oms_inventory.db.unit_of_work import InventoryUnitOfWork
from oms_inventory.domain import model
from oms_inventory.domain.model import Product, Reservation, ReservationStatus

log = logging.getLogger(__name__)


async def reserve_stock(command: msgs.ReserveStock, uow: InventoryUnitOfWork) -> None:
    async with uow:
        reservation = await uow.reservations.get(command.order_id, for_update=True)
        if reservation is None:
            requested: dict[str, int] = {}
            for line in command.lines:
                requested[line.sku] = requested.get(line.sku, 0) + line.quantity
            products = await uow.products.get_many(requested, for_update=True)
            reservation = model.reserve(command.order_id, requested, products)
            await uow.reservations.add(reservation)
            if reservation.status is ReservationStatus.RESERVED:
                await save_stock(uow, products.values())
        # A repeated request gets the answer the first one got.
        uow.publish(reservation_outcome(reservation))
        await uow.commit()


async def release_stock(command: msgs.ReleaseStock, uow: InventoryUnitOfWork) -> None:
    async with uow:
        reservation = await uow.reservations.get(command.order_id, for_update=True)
        if reservation is None:
            await uow.reservations.add(model.release_nothing(command.order_id))
        elif reservation.status is ReservationStatus.COMMITTED:
            log.error(
                "release refused: the goods already shipped", extra={"order_id": command.order_id}
            )
            await uow.commit()
            return
        else:
            products = await uow.products.get_many(
                (line.sku for line in reservation.lines), for_update=True
            )
            if reservation.release(products):
                await uow.reservations.save_status(reservation)
                await save_stock(uow, products.values())
        uow.publish(msgs.StockReleased(order_id=command.order_id))
        await uow.commit()


async def commit_stock(command: msgs.CommitStock, uow: InventoryUnitOfWork) -> None:
    async with uow:
        reservation = await uow.reservations.get(command.order_id, for_update=True)
        if reservation is None or reservation.status not in (
            ReservationStatus.RESERVED,
            ReservationStatus.COMMITTED,
        ):
            log.error("nothing reserved to ship", extra={"order_id": command.order_id})
            await uow.commit()
            return
        products = await uow.products.get_many(
            (line.sku for line in reservation.lines), for_update=True
        )
        if reservation.commit(products):
            await uow.reservations.save_status(reservation)
            await save_stock(uow, products.values())
        uow.publish(
            msgs.StockCommitted(
                order_id=command.order_id,
                lines=[
                    OrderLine(sku=line.sku, quantity=line.quantity) for line in reservation.lines
                ],
            )
        )
        await uow.commit()


async def save_stock(uow: InventoryUnitOfWork, products: Iterable[Product]) -> None:
    """Persist stock levels and announce any low-stock crossing they caused."""
    products = list(products)
    await uow.products.save_stock(products)
    announce_low_stock(uow, products)


def announce_low_stock(uow: InventoryUnitOfWork, products: Iterable[Product]) -> None:
    for product in products:
        for alert in product.events:
            uow.publish(
                msgs.LowStock(
                    sku=alert.sku,
                    available=alert.available,
                    low_stock_threshold=alert.low_stock_threshold,
                ),
                correlation_id=alert.sku,
            )
            uow.publish(
                msgs.ReplenishmentRequested(
                    sku=alert.sku,
                    quantity=alert.reorder_quantity or max(alert.low_stock_threshold, 1),
                ),
                correlation_id=alert.sku,
            )
        product.events.clear()


def reservation_outcome(reservation: Reservation) -> Message:
    if reservation.status in (ReservationStatus.RESERVED, ReservationStatus.COMMITTED):
        return msgs.StockReserved(
            order_id=reservation.order_id,
            lines=[
                PricedLine(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)
                for line in reservation.lines
            ],
            currency=reservation.currency or "",
        )
    if reservation.status is ReservationStatus.RELEASED:
        return msgs.StockReservationFailed(
            order_id=reservation.order_id, reason="order_cancelled", skus=[]
        )
    return msgs.StockReservationFailed(
        order_id=reservation.order_id,
        reason=reservation.refusal_reason or "out_of_stock",
        skus=reservation.refused_skus,
    )


HANDLERS: dict[type[Message], Callable[..., Awaitable[None]]] = {
    msgs.ReserveStock: reserve_stock,
    msgs.ReleaseStock: release_stock,
    msgs.CommitStock: commit_stock,
}
