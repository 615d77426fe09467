"""One handler per command the inventory service accepts."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from oms_contracts import Message
from oms_contracts import inventory as msgs
from oms_contracts.common import OrderLine, PricedLine
from oms_inventory.db.unit_of_work import InventoryUnitOfWork
from oms_inventory.domain import model
from oms_inventory.domain.model import Reservation, ReservationStatus
from oms_inventory.handlers.stock import ProductNotFound, receive_stock, save_stock

log = logging.getLogger(__name__)


async def reserve_stock(command: msgs.ReserveStock, uow: InventoryUnitOfWork) -> None:
    async with uow:
        reservation = await uow.reservations.get(command.order_id, for_update=True)
        if reservation is None:
            requested = _requested(command.lines)
            products = await uow.products.get_many(requested, for_update=True)
            expires_at = datetime.now(UTC) + uow.reservation_ttl
            reservation = model.reserve(command.order_id, requested, products, expires_at)
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
                await uow.reservations.save(reservation)
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
            await uow.reservations.save(reservation)
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


async def adjust_reservation(command: msgs.AdjustReservation, uow: InventoryUnitOfWork) -> None:
    async with uow:
        requested = _requested(command.lines)
        reservation = await uow.reservations.get(command.order_id, for_update=True)
        if reservation is None:
            refusal: tuple[str, list[str]] | None = ("not_reserved", [])
        else:
            products = await uow.products.get_many(
                {*requested, *(line.sku for line in reservation.lines)}, for_update=True
            )
            refusal = reservation.adjust(requested, products)
        if refusal is not None:
            reason, skus = refusal
            uow.publish(
                msgs.ReservationAdjustmentFailed(
                    order_id=command.order_id, reason=reason, skus=skus
                )
            )
        else:
            assert reservation is not None
            await uow.reservations.save(reservation)
            await save_stock(uow, products.values())
            uow.publish(
                msgs.ReservationAdjusted(
                    order_id=command.order_id,
                    lines=_priced(reservation),
                    currency=reservation.currency or "",
                )
            )
        await uow.commit()


def _requested(lines: list[OrderLine]) -> dict[str, int]:
    requested: dict[str, int] = {}
    for line in lines:
        requested[line.sku] = requested.get(line.sku, 0) + line.quantity
    return requested


def _priced(reservation: Reservation) -> list[PricedLine]:
    return [
        PricedLine(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)
        for line in reservation.lines
    ]


async def restock(command: msgs.Restock, uow: InventoryUnitOfWork) -> None:
    """A supplier system reports a delivery."""
    try:
        await receive_stock(command.sku, command.quantity, command.reference, uow)
    except ProductNotFound:
        # Retrying will not create the product: say so loudly, keep the queue moving.
        log.error("restock for an unknown SKU", extra={"sku": command.sku})


def reservation_outcome(reservation: Reservation) -> Message:
    if reservation.status in (ReservationStatus.RESERVED, ReservationStatus.COMMITTED):
        return msgs.StockReserved(
            order_id=reservation.order_id,
            lines=_priced(reservation),
            currency=reservation.currency or "",
        )
    if reservation.status in (ReservationStatus.RELEASED, ReservationStatus.EXPIRED):
        reason = (
            "order_cancelled"
            if reservation.status is ReservationStatus.RELEASED
            else ("reservation_expired")
        )
        return msgs.StockReservationFailed(order_id=reservation.order_id, reason=reason, skus=[])
    return msgs.StockReservationFailed(
        order_id=reservation.order_id,
        reason=reservation.refusal_reason or "out_of_stock",
        skus=reservation.refused_skus,
    )


HANDLERS: dict[type[Message], Callable[..., Awaitable[None]]] = {
    msgs.ReserveStock: reserve_stock,
    msgs.ReleaseStock: release_stock,
    msgs.CommitStock: commit_stock,
    msgs.Restock: restock,
    msgs.AdjustReservation: adjust_reservation,
}
