"""Read side of the payment API."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from oms_payment.db.tables import payments


async def payments_page(
    connection: AsyncConnection, *, order_id: str | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    query = select(payments).order_by(payments.c.id).limit(limit)
    if order_id is not None:
        query = query.where(payments.c.order_id == order_id)
    if after is not None:
        query = query.where(payments.c.id > uuid.UUID(after))
    return [dict(row) for row in (await connection.execute(query)).mappings()]


async def payment(connection: AsyncConnection, payment_id: uuid.UUID) -> dict[str, Any] | None:
    row = await connection.execute(select(payments).where(payments.c.id == payment_id))
    found = row.mappings().first()
    return dict(found) if found else None
