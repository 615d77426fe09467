"""Stock changes outside the saga: deliveries, expired reservations, the periodic
low-stock check (the loops that run the last two: `workers/maintenance.py`)."""

from __future__ import annotations

import logging

from oms_inventory.domain.model import DEFAULT_LOCATION, InventoryError, Product
from oms_inventory.handlers.unit_of_work import InventoryUnitOfWork, Products

log = logging.getLogger(__name__)


class ProductNotFound(InventoryError):
    code = "product_not_found"

    def __init__(self, sku: str) -> None:
        super().__init__(f"No product {sku}")


class UnknownLocation(InventoryError):
    code = "unknown_location"

    def __init__(self, *codes: str) -> None:
        super().__init__(f"No location {', '.join(codes)}")
        self.codes = codes


async def stocked_at(products: Products, sku: str, location: str) -> Product:
    """The product, read for update, with a stock record at `location` (an empty
    one if it was never stocked there)."""
    product = await products.get(sku, for_update=True)
    if product is None:
        raise ProductNotFound(sku)
    if not await products.open_level(product, location):
        raise UnknownLocation(location)
    return product


async def receive_stock(
    sku: str,
    quantity: int,
    reference: str | None,
    uow: InventoryUnitOfWork,
    location: str = DEFAULT_LOCATION,
) -> Product:
    """Add stock delivered to `location` and close the SKU's open replenishment
    request there. A delivery with a `reference` seen before for this SKU and
    location is not counted again."""
    async with uow:
        product = await stocked_at(uow.products, sku, location)
        if reference is None or await uow.replenishments.claim_receipt(
            sku, reference, quantity, location
        ):
            product.receive_delivery(quantity, reference, location)
            await uow.replenishments.fulfil(sku, reference, location)
        await uow.commit()
    return product


async def expire_reservations(uow: InventoryUnitOfWork, batch_size: int = 100) -> int:
    """Release reservations past their time limit (which tells the saga)."""
    async with uow:
        expired = await uow.reservations.expired(batch_size)
        if not expired:
            return 0
        # The stock of all products of the batch locked at once, in (sku, location)
        # order: no deadlock with reservations that lock the same stock.
        products = await uow.products.get_many(
            (sku for reservation in expired for sku in reservation.held_skus), for_update=True
        )
        for reservation in expired:
            if reservation.expire(products):
                log.warning("reservation expired", extra={"order_id": reservation.order_id})
        await uow.commit()
    return len(expired)


async def review_low_stock(uow: InventoryUnitOfWork, batch_size: int = 100) -> int:
    """The original design's regular check: alerts that events did not raise (e.g.
    after a threshold change) and flags that stock recovered from, per location."""
    async with uow:
        products = await uow.products.needing_low_stock_review(batch_size)
        for product in products:
            product.review_low_stock()
        await uow.commit()
    return len(products)
