"""Locations and product use cases behind the admin API (deliveries: see
handlers/stock.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from oms_inventory.domain.allocation import Location
from oms_inventory.domain.model import DEFAULT_LOCATION, InventoryError, Product
from oms_inventory.handlers.stock import ProductNotFound, UnknownLocation
from oms_inventory.handlers.unit_of_work import InventoryUnitOfWork


class ProductExists(InventoryError):
    code = "product_exists"

    def __init__(self, sku: str) -> None:
        super().__init__(f"SKU {sku} is taken")


class LocationExists(InventoryError):
    code = "location_exists"

    def __init__(self, code: str) -> None:
        super().__init__(f"Location {code} exists")


@dataclass(frozen=True)
class NewProduct:
    sku: str
    name: str
    unit_price: int
    currency: str
    # Initial stock by location code.
    stock: Mapping[str, int]
    low_stock_threshold: int = 0
    reorder_quantity: int = 0


@dataclass(frozen=True)
class ProductChanges:
    name: str | None = None
    unit_price: int | None = None
    low_stock_threshold: int | None = None
    reorder_quantity: int | None = None
    on_hand: int | None = None


async def create_location(location: Location, name: str, uow: InventoryUnitOfWork) -> None:
    async with uow:
        if not await uow.locations.add(location, name):
            raise LocationExists(location.code)
        await uow.commit()


async def create_product(new: NewProduct, uow: InventoryUnitOfWork) -> Product:
    """Refused naming the locations that do not exist, or the SKU if it is taken."""
    async with uow:
        locations = await uow.locations.get_many(new.stock)
        unknown = sorted(set(new.stock) - set(locations))
        if unknown:
            raise UnknownLocation(*unknown)
        product = Product.create(
            sku=new.sku,
            name=new.name,
            unit_price=new.unit_price,
            currency=new.currency,
            stock=[(locations[code], on_hand) for code, on_hand in new.stock.items()],
            low_stock_threshold=new.low_stock_threshold,
            reorder_quantity=new.reorder_quantity,
        )
        if not await uow.products.add(product):
            raise ProductExists(product.sku)
        await uow.commit()
    return product


async def update_product(
    sku: str,
    changes: ProductChanges,
    uow: InventoryUnitOfWork,
    location: str = DEFAULT_LOCATION,
) -> Product:
    """Staff edits; a count (`on_hand`) is at `location`."""
    async with uow:
        product = await uow.products.get_to_edit(sku)
        if product is None:
            raise ProductNotFound(sku)
        if changes.on_hand is not None and not await uow.products.open_level(product, location):
            raise UnknownLocation(location)
        product.update(**dataclasses.asdict(changes), location=location)
        await uow.commit()
    return product
