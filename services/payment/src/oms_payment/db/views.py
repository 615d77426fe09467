"""Read side of the payment API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from oms_payment.db import tables
from oms_payment.db.tables import payments, without_token
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


async def gateway_calls(connection: AsyncConnection, payment_id: uuid.UUID) -> list[dict[str, Any]]:
    """The audit log without the card tokens the authorizations sent: an auditor needs
    what was asked and answered, not the customer's card."""
    calls = tables.gateway_calls
    rows = await connection.execute(
        select(
            *(c for c in calls.c if c.name != "request"),
            without_token(calls.c.request).label("request"),
        )
        .where(calls.c.payment_id == payment_id)
        .order_by(calls.c.id)
    )
    return [dict(row) for row in rows.mappings()]


async def refunds_of(connection: AsyncConnection, payment_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await connection.execute(
        select(tables.refunds)
        .where(tables.refunds.c.payment_id == payment_id)
        .order_by(tables.refunds.c.created_at)
    )
    return [dict(row) for row in rows.mappings()]


async def settlement(
    connection: AsyncConnection, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Captured, refunded and net money per UTC day and currency in [start, end); each
    capture (one per parcel) on the day the gateway confirmed it."""
    rows = await connection.execute(
        text("""
            WITH captured AS (
                SELECT (captured_at AT TIME ZONE 'UTC')::date AS day, currency,
                       sum(amount) AS captured
                FROM payment.capture_ledger
                WHERE captured_at >= :start AND captured_at < :end
                GROUP BY 1, 2),
            refunded AS (
                SELECT (r.completed_at AT TIME ZONE 'UTC')::date AS day, p.currency,
                       sum(r.amount) AS refunded
                FROM payment.refunds r JOIN payment.payments p ON p.id = r.payment_id
                WHERE r.status = 'succeeded' AND r.completed_at >= :start
                  AND r.completed_at < :end
                GROUP BY 1, 2)
            SELECT day, currency, coalesce(captured, 0) AS captured,
                   coalesce(refunded, 0) AS refunded,
                   coalesce(captured, 0) - coalesce(refunded, 0) AS net
            FROM captured FULL JOIN refunded USING (day, currency)
            ORDER BY day, currency"""),
        {"start": start, "end": end},
    )
    return [dict(row) for row in rows.mappings()]
