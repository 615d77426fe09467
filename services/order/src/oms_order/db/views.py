"""Read side of the API: plain queries, no aggregate needed."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from oms_order.db.tables import order_history


async def history(connection: AsyncConnection, order_id: str) -> list[dict[str, Any]]:
    rows = await connection.execute(
        select(order_history)
        .where(order_history.c.order_id == uuid.UUID(order_id))
        .order_by(order_history.c.id)
    )
    return [dict(row) for row in rows.mappings()]
