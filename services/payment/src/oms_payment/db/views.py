"""Read side of the payment API."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from oms_payment.db.tables import payments
from oms_runtime.pagination import keyset_page


async def payments_page(
    connection: AsyncConnection, *, order_id: str | None, after: uuid.UUID | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    query = select(payments)
    if order_id is not None:
        query = query.where(payments.c.order_id == order_id)
    return await keyset_page(connection, query, payments.c.id, after=after, limit=limit)


async def payment(connection: AsyncConnection, payment_id: uuid.UUID) -> dict[str, Any] | None:
    row = await connection.execute(select(payments).where(payments.c.id == payment_id))
    found = row.mappings().first()
    return dict(found) if found else None
