"""Product use cases behind the admin API (deliveries: see handlers/stock.py)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from oms_inventory.domain.model import InventoryError, Product
from oms_inventory.handlers.stock import ProductNotFound
from oms_inventory.handlers.unit_of_work import InventoryUnitOfWork


class ProductExists(InventoryError):
    code = "product_exists"

    def __init__(self, sku: str) -> None:
        super().__init__(f"SKU {sku} is taken")


@dataclass(frozen=True)
class ProductChanges:
    name: str | None = None
    unit_price: int | None = None
    low_stock_threshold: int | None = None
    reorder_quantity: int | None = None
    on_hand: int | None = None


async def create_product(product: Product, uow: InventoryUnitOfWork) -> Product:
    async with uow:
        if not await uow.products.add(product):
            raise ProductExists(product.sku)
        await uow.commit()
    return product


async def update_product(sku: str, changes: ProductChanges, uow: InventoryUnitOfWork) -> Product:
    async with uow:
        product = await uow.products.get(sku, for_update=True)
        if product is None:
            raise ProductNotFound(sku)
        product.update(**dataclasses.asdict(changes))
        await uow.commit()
    return product
