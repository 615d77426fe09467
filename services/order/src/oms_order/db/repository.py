"""Maps the order aggregate to its tables and back, explicitly (no lazy loading)."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Uuid, any_, bindparam, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from oms_contracts import Envelope
from oms_order.db.tables import idempotency_keys, order_history, orders
from oms_order.domain.model import (
    Address,
    Amendment,
    AmendmentStep,
    Compensation,
    Order,
    OrderLine,
    OrderStatus,
)
from oms_runtime.bulk import UPDATED_AT_NOW
from oms_runtime.messaging.unit_of_work import SharedTransaction, UnitOfWork


def _mutable_columns() -> list[str]:
    return [
        c.name
        for c in orders.columns
        if c.name not in ("id", "created_at", "updated_at", "deleted_at")
    ]


# Built once: executing the same statement object with new parameters skips
# SQLAlchemy's statement construction and cache-key work on the hot path.
_GET = select(orders).where(orders.c.id == bindparam("b_id"))
_GET_FOR_UPDATE = _GET.with_for_update()
_SAVE = (
    update(orders)
    .where(orders.c.id == bindparam("b_id"))
    .values(
        {
            **{name: bindparam(f"b_{name}") for name in _mutable_columns()},
            "updated_at": func.now(),
        }
    )
    .returning(orders.c.updated_at)
)
_MARK_DELETED = (
    update(orders)
    .where(orders.c.id == bindparam("b_id"))
    .values(deleted_at=func.coalesce(orders.c.deleted_at, func.now()))
)


_LOAD_BATCH = (
    select(orders)
    .where(orders.c.id == any_(bindparam("b_ids", type_=ARRAY(Uuid))))
    .order_by(orders.c.id)
    .with_for_update()
)
# The rows of a batch's orders as its messages left them (None: no such order), in
# the batch's shared state.
_BATCH_ROWS = "orders.rows"


async def load_orders_for_batch(shared: SharedTransaction, envelopes: list[Envelope]) -> None:
    """Lock and read, in one statement, every order a batch of replies is about.

    Locks are taken in id order, so two replicas' batches never wait for each other
    in a cycle. The batch's handlers then read these rows from memory, and their
    saves are written with the batch's commit, in one statement."""
    ids: set[uuid.UUID] = set()
    for envelope in envelopes:
        with contextlib.suppress(ValueError, TypeError):
            ids.add(uuid.UUID(envelope.correlation_id))
    if not ids:
        return
    result = await shared.connection.execute(_LOAD_BATCH, {"b_ids": sorted(ids)})
    rows: dict[str, dict[str, Any] | None] = {str(key): None for key in ids}
    for row in result.mappings():
        rows[str(row["id"])] = dict(row)
    shared.state[_BATCH_ROWS] = rows


class OrderRepository:
    def __init__(self, connection: AsyncConnection, unit_of_work: UnitOfWork) -> None:
        self._connection = connection
        self._unit_of_work = unit_of_work
        self._batch = unit_of_work.shared
        self._loaded_status: dict[str, OrderStatus] = {}

    def _batch_rows(self) -> dict[str, dict[str, Any] | None]:
        if self._batch is None:
            return {}
        rows: dict[str, dict[str, Any] | None] = self._batch.state.get(_BATCH_ROWS, {})
        return rows

    def loaded_status(self, order_id: str) -> OrderStatus | None:
        """The status the order had when this unit of work read it."""
        return self._loaded_status.get(order_id)

    async def add(self, order: Order) -> None:
        """Insert with the commit (nothing reads a new order back before it)."""
        self._unit_of_work.insert_on_commit(orders, [_order_row(order)])

    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        try:
            key = uuid.UUID(order_id)
        except ValueError:
            return None
        batch_rows = self._batch_rows()
        if order_id in batch_rows:
            # Loaded (and locked) for the whole batch, as its earlier messages left it.
            batch_row = batch_rows[order_id]
            return self._remember(_order_from_row(batch_row)) if batch_row else None
        # Replies for one order are applied one at a time, in any replica.
        statement = _GET_FOR_UPDATE if for_update else _GET
        row = (await self._connection.execute(statement, {"b_id": key})).mappings().first()
        return self._remember(_order_from_row(row)) if row is not None else None

    async def overdue(self, limit: int) -> list[Order]:
        """Orders whose current step's deadline passed, locked for this caller only;
        other sweepers (replicas) skip them."""
        return await self._load(
            select(orders)
            .where(orders.c.deadline_at <= func.now())
            .order_by(orders.c.deadline_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

    async def search(
        self,
        *,
        customer_id: str | None,
        statuses: list[str],
        created_from: datetime | None,
        created_to: datetime | None,
        sku: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Order]:
        """Newest first. Paging by (created_at, id) keeps pages stable while new
        orders arrive: they sort before the cursor, never into later pages."""
        query = select(orders).where(orders.c.deleted_at.is_(None))
        if customer_id is not None:
            query = query.where(orders.c.customer_id == customer_id)
        if statuses:
            query = query.where(orders.c.status.in_(statuses))
        if created_from is not None:
            query = query.where(orders.c.created_at >= created_from)
        if created_to is not None:
            query = query.where(orders.c.created_at < created_to)
        if sku is not None:
            # JSONB containment, served by the GIN index on the lines.
            query = query.where(orders.c.lines.contains([{"sku": sku}]))
        if after is not None:
            query = query.where(tuple_(orders.c.created_at, orders.c.id) < tuple_(*after))
        query = query.order_by(orders.c.created_at.desc(), orders.c.id.desc()).limit(limit)
        return await self._load(query)

    async def _load(self, query: Any) -> list[Order]:
        rows = (await self._connection.execute(query)).mappings().all()
        return [self._remember(_order_from_row(row)) for row in rows]

    def _remember(self, order: Order) -> Order:
        self._loaded_status[order.id] = order.status
        return order

    async def save(self, order: Order) -> None:
        batch_rows = self._batch_rows()
        if self._batch is not None and batch_rows.get(order.id):
            if not order.deleted:
                self._save_in_batch(batch_rows, order)
                return
            # Written at once below; later reads in the batch go to the table.
            del batch_rows[order.id]
        row = {
            f"b_{name}": value
            for name, value in _order_row(order).items()
            if name not in ("id", "created_at")
        }
        row["b_id"] = uuid.UUID(order.id)
        result = await self._connection.execute(_SAVE, row)
        order.updated_at = result.scalar_one()
        if order.deleted:
            await self._connection.execute(_MARK_DELETED, {"b_id": row["b_id"]})

    def _save_in_batch(self, batch_rows: dict[str, dict[str, Any] | None], order: Order) -> None:
        row = _order_row(order)
        previous = batch_rows[order.id]
        assert previous is not None
        batch_rows[order.id] = {
            **row,
            "updated_at": previous["updated_at"],
            "deleted_at": previous["deleted_at"],
        }
        del row["created_at"]
        self._unit_of_work.update_on_commit(orders, "id", row, computed=UPDATED_AT_NOW)

    def record_history(self, entries: list[dict[str, Any]]) -> None:
        """Written with the commit (history is append-only and never read back in
        the transaction that adds to it)."""
        self._unit_of_work.insert_on_commit(order_history, entries)


class IdempotencyKeys:
    """Requests already answered, by (who, what, key): a retry gets the same order."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def claim(
        self,
        principal: str,
        scope: str,
        key: str,
        request_hash: str,
        order_id: str,
        ttl: timedelta,
    ) -> bool:
        """True if the key is ours now. A concurrent claim of the same key waits here
        until ours commits (or rolls back), then finds it taken."""
        statement = pg_insert(idempotency_keys).values(
            principal=principal,
            scope=scope,
            key=key,
            request_hash=request_hash,
            order_id=uuid.UUID(order_id),
        )
        result = await self._connection.execute(
            statement.on_conflict_do_update(
                index_elements=["principal", "scope", "key"],
                set_={
                    "request_hash": statement.excluded.request_hash,
                    "order_id": statement.excluded.order_id,
                    "created_at": func.now(),
                },
                # An expired key is free again.
                where=idempotency_keys.c.created_at < func.now() - ttl,
            ).returning(idempotency_keys.c.key)
        )
        return result.first() is not None

    async def find(self, principal: str, scope: str, key: str) -> tuple[str, str] | None:
        row = (
            await self._connection.execute(
                select(idempotency_keys.c.request_hash, idempotency_keys.c.order_id).where(
                    idempotency_keys.c.principal == principal,
                    idempotency_keys.c.scope == scope,
                    idempotency_keys.c.key == key,
                )
            )
        ).first()
        return (row.request_hash, str(row.order_id)) if row else None

    async def remember_answer(
        self, principal: str, scope: str, key: str, response: dict[str, Any]
    ) -> None:
        await self._connection.execute(
            update(idempotency_keys)
            .where(
                idempotency_keys.c.principal == principal,
                idempotency_keys.c.scope == scope,
                idempotency_keys.c.key == key,
            )
            .values(response=response)
        )

    async def first_answer(self, principal: str, scope: str, key: str) -> dict[str, Any] | None:
        answer: dict[str, Any] | None = await self._connection.scalar(
            select(idempotency_keys.c.response).where(
                idempotency_keys.c.principal == principal,
                idempotency_keys.c.scope == scope,
                idempotency_keys.c.key == key,
            )
        )
        return answer

    async def purge(self, ttl: timedelta) -> int:
        result = await self._connection.execute(
            idempotency_keys.delete().where(idempotency_keys.c.created_at < func.now() - ttl)
        )
        return int(result.rowcount or 0)


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
        "deferred_compensations": sorted(c.value for c in order.deferred_compensations),
        "created_at": order.created_at,
        "lines": [
            {"sku": line.sku, "quantity": line.quantity, "unit_price": line.unit_price}
            for line in order.lines
        ],
        "cancellation_reason": order.cancellation_reason,
        "delivered": order.delivered,
        "settlement_forced": order.settlement_forced,
        "resume_status": order.resume_status.value if order.resume_status else None,
        "step_attempts": order.step_attempts,
        "deadline_at": order.deadline_at,
        "pending_address": (
            dataclasses.asdict(order.pending_address) if order.pending_address else None
        ),
        "amendment": _amendment_row(order.amendment),
        "status_changed_at": order.status_changed_at or order.created_at,
    }


def _order_from_row(row: Any) -> Order:
    return Order(
        id=str(row["id"]),
        customer_id=row["customer_id"],
        lines=[
            OrderLine(line["sku"], line["quantity"], line["unit_price"]) for line in row["lines"]
        ],
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
        deferred_compensations={Compensation(c) for c in row["deferred_compensations"]},
        cancellation_reason=row["cancellation_reason"],
        delivered=row["delivered"],
        settlement_forced=row["settlement_forced"],
        resume_status=OrderStatus(row["resume_status"]) if row["resume_status"] else None,
        step_attempts=row["step_attempts"],
        deadline_at=row["deadline_at"],
        pending_address=Address(**row["pending_address"]) if row["pending_address"] else None,
        deleted=row["deleted_at"] is not None,
        amendment=_amendment(row["amendment"]),
        status_changed_at=row["status_changed_at"],
    )


def _amendment_row(amendment: Amendment | None) -> dict[str, Any] | None:
    if amendment is None:
        return None
    return {
        "lines": amendment.lines,
        "previous": [[line.sku, line.quantity, line.unit_price] for line in amendment.previous],
        "step": amendment.step.value,
        "reason": amendment.reason,
        "skus": amendment.skus,
    }


def _amendment(row: dict[str, Any] | None) -> Amendment | None:
    if row is None:
        return None
    return Amendment(
        lines=[(sku, quantity) for sku, quantity in row["lines"]],
        previous=[OrderLine(sku, quantity, price) for sku, quantity, price in row["previous"]],
        step=AmendmentStep(row["step"]),
        reason=row["reason"],
        skus=row["skus"],
    )
