"""Read side of the admin API: products with their stock per location, the ledger,
replenishment requests, locations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, exists, func, literal_column, not_, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from oms_inventory.db.tables import (
    locations,
    products,
    replenishments,
    stock,
    stock_movements,
)
from oms_runtime.pagination import keyset_page

# A product's stock per location, preferred location first, as one JSON array.
_LEVELS = (
    select(
        func.coalesce(
            func.jsonb_agg(
                aggregate_order_by(
                    func.jsonb_build_object(
                        "location",
                        stock.c.location,
                        "on_hand",
                        stock.c.on_hand,
                        "reserved",
                        stock.c.reserved,
                        "damaged",
                        stock.c.damaged,
                    ),
                    locations.c.priority,
                    stock.c.location,
                )
            ),
            literal_column("'[]'::jsonb"),
        )
    )
    .select_from(stock.join(locations, locations.c.code == stock.c.location))
    .where(stock.c.sku == products.c.sku)
    .scalar_subquery()
    .label("levels")
)
_PRODUCTS = select(products, _LEVELS)
# Low at a location: what is available there is at or under the threshold. A
# product stocked nowhere has nothing available anywhere.
_LOW_SOMEWHERE = or_(
    exists().where(
        and_(
            stock.c.sku == products.c.sku,
            stock.c.on_hand - stock.c.reserved <= products.c.low_stock_threshold,
        )
    ),
    not_(exists().where(stock.c.sku == products.c.sku)),
)


async def product(connection: AsyncConnection, sku: str) -> dict[str, Any] | None:
    """The product with `levels` ([{"location", "on_hand", "reserved", "damaged"}])."""
    found = (await connection.execute(_PRODUCTS.where(products.c.sku == sku))).mappings().first()
    return dict(found) if found is not None else None


async def product_page(
    connection: AsyncConnection, *, low_stock: bool | None, after: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    query: Select[Any] = _PRODUCTS
    if low_stock is True:
        query = query.where(_LOW_SOMEWHERE)
    elif low_stock is False:
        query = query.where(not_(_LOW_SOMEWHERE))
    return await keyset_page(connection, query, products.c.sku, after=after, limit=limit)


async def movements_page(
    connection: AsyncConnection,
    *,
    sku: str,
    location: str | None,
    after: int | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    query = select(stock_movements).where(stock_movements.c.sku == sku)
    if location is not None:
        query = query.where(stock_movements.c.location == location)
    return await keyset_page(connection, query, stock_movements.c.id, after=after, limit=limit)


async def replenishments_page(
    connection: AsyncConnection,
    *,
    status: str | None,
    location: str | None,
    after: int | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    query = select(replenishments)
    if status is not None:
        query = query.where(replenishments.c.status == status)
    if location is not None:
        query = query.where(replenishments.c.location == location)
    return await keyset_page(connection, query, replenishments.c.id, after=after, limit=limit)


async def all_locations(connection: AsyncConnection) -> list[dict[str, Any]]:
    """Every location, preferred first (a shop has a handful)."""
    result = await connection.execute(
        select(locations).order_by(locations.c.priority, locations.c.code)
    )
    return [dict(row) for row in result.mappings()]
