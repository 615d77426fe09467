"""Stock changes shared by the message handlers, the admin API and the periodic
check: persisting levels, low-stock alerts, deliveries, expired reservations."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from oms_contracts import inventory as msgs
from oms_inventory.db.unit_of_work import InventoryUnitOfWork
from oms_inventory.domain.model import Product

log = logging.getLogger(__name__)


class ProductNotFound(Exception):
    pass


async def save_stock(uow: InventoryUnitOfWork, products: Iterable[Product]) -> None:
    """Persist stock levels and announce any low-stock crossing they caused."""
    products = list(products)
    await uow.products.save_stock(products)
    await announce_low_stock(uow, products)


async def announce_low_stock(uow: InventoryUnitOfWork, products: Iterable[Product]) -> None:
    """One alert per crossing of the threshold, and a replenishment request unless one
    is still open for the SKU."""
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
            quantity = alert.reorder_quantity or max(alert.low_stock_threshold, 1)
            if await uow.replenishments.request(alert.sku, quantity, alert.available):
                uow.publish(
                    msgs.ReplenishmentRequested(sku=alert.sku, quantity=quantity),
                    correlation_id=alert.sku,
                )
        product.events.clear()


async def receive_stock(
    sku: str, quantity: int, reference: str | None, uow: InventoryUnitOfWork
) -> Product:
    """Add delivered stock and close the SKU's open replenishment request. A delivery
    with a `reference` seen before for this SKU is not counted again."""
    async with uow:
        product = await uow.products.get(sku, for_update=True)
        if product is None:
            raise ProductNotFound(sku)
        if reference is not None and not await uow.replenishments.claim_receipt(
            sku, reference, quantity
        ):
            await uow.commit()
            return product
        product.restock(quantity, note=reference)
        await save_stock(uow, [product])
        await uow.replenishments.fulfil(sku, reference)
        uow.publish(
            msgs.Restocked(
                sku=sku, quantity=quantity, on_hand=product.on_hand, reference=reference
            ),
            correlation_id=sku,
        )
        await uow.commit()
    return product


async def expire_reservations(uow: InventoryUnitOfWork, batch_size: int = 100) -> int:
    """Release reservations past their time limit and tell the saga."""
    async with uow:
        expired = await uow.reservations.expired(batch_size)
        if not expired:
            return 0
        # All products of the batch locked at once, in SKU order: no deadlock with
        # reservations that lock the same products.
        products = await uow.products.get_many(
            (line.sku for reservation in expired for line in reservation.lines), for_update=True
        )
        for reservation in expired:
            if reservation.expire(products):
                await uow.reservations.save(reservation)
                uow.publish(
                    msgs.ReservationExpired(order_id=reservation.order_id),
                    correlation_id=reservation.order_id,
                )
                log.warning("reservation expired", extra={"order_id": reservation.order_id})
        await save_stock(uow, products.values())
        await uow.commit()
    return len(expired)


async def review_low_stock(uow: InventoryUnitOfWork, batch_size: int = 100) -> int:
    """The original design's regular check: alerts that events did not raise (e.g.
    after a threshold change) and flags that stock recovered from."""
    async with uow:
        products = await uow.products.needing_low_stock_review(batch_size)
        for product in products:
            product.review_low_stock()
        await uow.products.save_stock(products)
        await announce_low_stock(uow, products)
        await uow.commit()
    return len(products)
