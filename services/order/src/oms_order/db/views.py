"""Read side of the API: plain queries, no aggregate needed."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from oms_order.db.tables import order_history, orders
from oms_runtime.pagination import keyset_page


async def history(connection: AsyncConnection, order_id: str) -> list[dict[str, Any]]:
    rows = await connection.execute(
        select(order_history)
        .where(order_history.c.order_id == uuid.UUID(order_id))
        .order_by(order_history.c.id)
    )
    return [dict(row) for row in rows.mappings()]


async def stuck_orders(
    connection: AsyncConnection, *, state: str, after: uuid.UUID | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    query = select(
        orders.c.id,
        orders.c.customer_id,
        orders.c.status,
        orders.c.status_reason,
        orders.c.pending_compensations,
        orders.c.deadline_at,
        orders.c.step_attempts,
        orders.c.updated_at,
    )
    if state == "requires_attention":
        query = query.where(orders.c.status == "requires_attention")
    else:
        query = query.where(orders.c.deadline_at < func.now())
    return await keyset_page(connection, query, orders.c.id, after=after, limit=limit)
