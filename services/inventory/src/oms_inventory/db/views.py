"""Read side of the product API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from oms_inventory.db.tables import products, replenishments, stock_movements
from oms_runtime.pagination import keyset_page


async def product_page(
    connection: AsyncConnection, *, low_stock: bool | None, after: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    query = select(products)
    available = products.c.on_hand - products.c.reserved
    if low_stock is True:
        query = query.where(available <= products.c.low_stock_threshold)
    elif low_stock is False:
        query = query.where(available > products.c.low_stock_threshold)
    return await keyset_page(connection, query, products.c.sku, after=after, limit=limit)


async def movements_page(
    connection: AsyncConnection, *, sku: str, after: int | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    query = select(stock_movements).where(stock_movements.c.sku == sku)
    return await keyset_page(connection, query, stock_movements.c.id, after=after, limit=limit)


async def replenishments_page(
    connection: AsyncConnection, *, status: str | None, after: int | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    query = select(replenishments)
    if status is not None:
        query = query.where(replenishments.c.status == status)
    return await keyset_page(connection, query, replenishments.c.id, after=after, limit=limit)
