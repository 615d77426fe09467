"""Read side of the product API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from oms_inventory.db.tables import products


async def product_page(
    connection: AsyncConnection, *, low_stock: bool | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    query = select(products).order_by(products.c.sku).limit(limit)
    available = products.c.on_hand - products.c.reserved
    if low_stock is True:
        query = query.where(available <= products.c.low_stock_threshold)
    elif low_stock is False:
        query = query.where(available > products.c.low_stock_threshold)
    if after is not None:
        query = query.where(products.c.sku > after)
    return [dict(row) for row in (await connection.execute(query)).mappings()]
