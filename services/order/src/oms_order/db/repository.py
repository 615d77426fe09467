"""Maps the order aggregate to its tables and back, explicitly (no lazy loading)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from oms_order.db.tables import order_history, order_lines, orders
from oms_order.domain.model import Address, Compensation, Order, OrderLine, OrderStatus


class OrderRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._loaded_lines: dict[str, list[tuple[str, int, int | None]]] = {}

    async def add(self, order: Order) -> None:
        await self._connection.execute(orders.insert().values(**_order_row(order)))
        await self._insert_lines(order)
        self._remember(order)

    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        try:
            key = uuid.UUID(order_id)
        except ValueError:
            return None
        query = select(orders).where(orders.c.id == key)
        if for_update:
            # Replies for one order are applied one at a time, in any replica.
            query = query.with_for_update()
        row = (await self._connection.execute(query)).mappings().first()
        if row is None:
            return None
        lines = (
            await self._connection.execute(
                select(order_lines)
                .where(order_lines.c.order_id == key)
                .order_by(order_lines.c.position)
            )
        ).all()
        order = _order_from_row(
            row, [OrderLine(line.sku, line.quantity, line.unit_price) for line in lines]
        )
        self._remember(order)
        return order

    async def save(self, order: Order) -> None:
        row = _order_row(order)
        del row["id"], row["created_at"]
        result = await self._connection.execute(
            update(orders)
            .where(orders.c.id == uuid.UUID(order.id))
            .values(**row, updated_at=func.now())
            .returning(orders.c.updated_at)
        )
        order.updated_at = result.scalar_one()
        if _line_tuples(order) != self._loaded_lines.get(order.id):
            await self._connection.execute(
                order_lines.delete().where(order_lines.c.order_id == uuid.UUID(order.id))
            )
            await self._insert_lines(order)
            self._remember(order)

    async def record_history(self, entries: list[dict[str, Any]]) -> None:
        if entries:
            await self._connection.execute(order_history.insert(), entries)

    async def _insert_lines(self, order: Order) -> None:
        await self._connection.execute(
            order_lines.insert(),
            [
                {
                    "order_id": uuid.UUID(order.id),
                    "position": position,
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                }
                for position, line in enumerate(order.lines)
            ],
        )

    def _remember(self, order: Order) -> None:
        self._loaded_lines[order.id] = _line_tuples(order)


def _line_tuples(order: Order) -> list[tuple[str, int, int | None]]:
    return [(line.sku, line.quantity, line.unit_price) for line in order.lines]


def _order_row(order: Order) -> dict[str, Any]:
    return {
        "id": uuid.UUID(order.id),
        "customer_id": order.customer_id,
        "status": order.status.value,
        "status_reason": order.status_reason,
        "status_detail": order.status_detail,
        "currency": order.currency,
        "total": order.total,
        "shipping_address": dataclasses.asdict(order.shipping_address),
        "payment_token": order.payment_token,
        "payment_id": order.payment_id,
        "shipment_id": order.shipment_id,
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "stock_reserved": order.stock_reserved,
        "payment_authorized": order.payment_authorized,
        "stock_committed": order.stock_committed,
        "captured_amount": order.captured_amount,
        "pending_compensations": sorted(c.value for c in order.pending_compensations),
        "created_at": order.created_at,
    }


def _order_from_row(row: Any, lines: list[OrderLine]) -> Order:
    return Order(
        id=str(row["id"]),
        customer_id=row["customer_id"],
        lines=lines,
        shipping_address=Address(**row["shipping_address"]),
        payment_token=row["payment_token"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        status=OrderStatus(row["status"]),
        status_reason=row["status_reason"],
        status_detail=row["status_detail"],
        currency=row["currency"],
        payment_id=row["payment_id"],
        shipment_id=row["shipment_id"],
        carrier=row["carrier"],
        tracking_number=row["tracking_number"],
        stock_reserved=row["stock_reserved"],
        payment_authorized=row["payment_authorized"],
        stock_committed=row["stock_committed"],
        captured_amount=row["captured_amount"],
        pending_compensations={Compensation(c) for c in row["pending_compensations"]},
    )
