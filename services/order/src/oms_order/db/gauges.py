"""Gauges read from the orders table when /metrics is scraped."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from oms_order.db.tables import orders
from oms_order.domain.model import TERMINAL_STATUSES, OrderStatus
from oms_runtime import metrics

_OPEN = [status for status in OrderStatus if status not in TERMINAL_STATUSES]


async def open_sagas(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(orders.c.status, func.count())
            .where(orders.c.status.in_([status.value for status in _OPEN]))
            .group_by(orders.c.status)
        )
        counts: dict[str, int] = dict(rows.tuples().all())
    for status in _OPEN:
        metrics.OPEN_SAGAS.labels(status.value).set(counts.get(status.value, 0))
