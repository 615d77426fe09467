"""Read side of the shipping API."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from oms_runtime.pagination import keyset_page
from oms_shipping.db.tables import returns, shipments, tracking_events


async def shipments_page(
    connection: AsyncConnection,
    *,
    order_id: str | None,
    after: uuid.UUID | None,
    limit: int,
    status: str | None = None,
    location: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    query = select(shipments)
    if order_id is not None:
        query = query.where(shipments.c.order_id == order_id)
    if status is not None:
        query = query.where(shipments.c.status == status)
    if location is not None:
        query = query.where(shipments.c.location == location)
    return await keyset_page(connection, query, shipments.c.id, after=after, limit=limit)


async def shipment_by(connection: AsyncConnection, **criteria: Any) -> dict[str, Any] | None:
    query = select(shipments)
    for column, value in criteria.items():
        query = query.where(shipments.c[column] == value)
    found = (await connection.execute(query)).mappings().first()
    return dict(found) if found else None


async def timelines(
    connection: AsyncConnection, shipment_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Tracking events of several shipments in one query (no N+1 for a page)."""
    found: dict[uuid.UUID, list[dict[str, Any]]] = {sid: [] for sid in shipment_ids}
    if shipment_ids:
        rows = await connection.execute(
            select(tracking_events)
            .where(tracking_events.c.shipment_id.in_(shipment_ids))
            .order_by(tracking_events.c.occurred_at, tracking_events.c.id)
        )
        for row in rows.mappings():
            found[row["shipment_id"]].append(dict(row))
    return found


async def returns_page(
    connection: AsyncConnection,
    *,
    status: str | None,
    order_id: str | None,
    location: str | None,
    after: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    query = select(returns)
    if status is not None:
        query = query.where(returns.c.status == status)
    if order_id is not None:
        query = query.where(returns.c.order_id == order_id)
    if location is not None:
        # A return with a line going back to the location.
        query = query.where(returns.c.lines.contains([{"location": location}]))
    return await keyset_page(connection, query, returns.c.id, after=after, limit=limit)


async def return_by_id(connection: AsyncConnection, return_id: str) -> dict[str, Any] | None:
    found = (await connection.execute(select(returns).where(returns.c.id == return_id))).first()
    return dict(found._mapping) if found else None
