"""Maps the order aggregate to its tables and back, explicitly (no lazy loading)."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import bindparam, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from oms_contracts import Envelope
from oms_order.db.tables import idempotency_keys, order_history, orders, returns
from oms_order.domain.amendment import Amendment, AmendmentStep
from oms_order.domain.fulfillment import Fulfillment, ParcelStatus
from oms_order.domain.model import Compensation, Order, OrderStatus
from oms_order.domain.returns import Return, ReturnLine, ReturnStatus
from oms_order.domain.values import Address, OrderLine
from oms_runtime.bulk import Computed
from oms_runtime.messaging.unit_of_work import SharedTransaction
from oms_runtime.repository import Repository, Row


async def load_orders_for_batch(shared: SharedTransaction, envelopes: list[Envelope]) -> None:
    """Lock and read, in one statement, every order a batch of replies is about (their
    correlation id). The batch's handlers then find them in memory."""
    ids: set[uuid.UUID] = set()
    for envelope in envelopes:
        with contextlib.suppress(ValueError, TypeError):
            ids.add(uuid.UUID(envelope.correlation_id))
    await OrderRepository.preload(shared, ids)


_OVERDUE = (
    select(orders)
    .where(orders.c.deadline_at <= func.now())
    .order_by(orders.c.deadline_at)
    .limit(bindparam("b_limit"))
    .with_for_update(skip_locked=True)
)


class OrderRepository(Repository[Order]):
    table = orders
    key = "id"
    # The order's modification time is one of its values (the API shows it).
    computed: ClassVar[Computed] = ()

    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        try:
            key = uuid.UUID(order_id)
        except ValueError:
            return None
        return await self._get(key, for_update=for_update)

    def add(self, order: Order) -> None:
        self._add(order)

    async def overdue(self, limit: int) -> list[Order]:
        """Orders whose current step's deadline passed, locked for this caller only;
        other sweepers (replicas) skip them."""
        return await self._find(_OVERDUE, {"b_limit": limit}, locked=True)

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
        return await self._find(query, locked=False)

    def record_history(self, entry: dict[str, Any]) -> None:
        """Written with the commit (history is append-only and never read back in
        the transaction that adds to it)."""
        self._unit_of_work.insert_on_commit(
            order_history, [{**entry, "order_id": uuid.UUID(entry["order_id"])}]
        )

    def _key_of(self, order: Order) -> uuid.UUID:
        return uuid.UUID(order.id)

    def _to_row(self, order: Order) -> Row:
        return _order_row(order)

    def _from_row(self, row: Mapping[str, Any]) -> Order:
        return _order_from_row(row)

    def _update_of(self, order: Order, row: Row, changed: set[str]) -> Row:
        order.updated_at = row["updated_at"] = datetime.now(UTC)
        return {name: value for name, value in row.items() if name != "created_at"}


_RETURNS_OF_ORDER = (
    select(returns).where(returns.c.order_id == bindparam("b_order_id")).order_by(returns.c.id)
)
_RETURNS_OVERDUE = (
    select(returns)
    .where(returns.c.deadline_at <= func.now())
    .order_by(returns.c.deadline_at)
    .limit(bindparam("b_limit"))
    .with_for_update(skip_locked=True)
)


class ReturnRepository(Repository[Return]):
    table = returns
    key = "id"
    # Its modification time is one of its values (the API shows it).
    computed: ClassVar[Computed] = ()

    async def get(self, return_id: str, *, for_update: bool = False) -> Return | None:
        try:
            key = uuid.UUID(return_id)
        except ValueError:
            return None
        return await self._get(key, for_update=for_update)

    def add(self, created: Return) -> None:
        self._add(created)

    async def of_order(self, order_id: str, *, for_update: bool = False) -> list[Return]:
        """Every return of the order, oldest first. The caller holds the order's row
        lock when it decides on a new one, so no other return slips in meanwhile."""
        return await self._find(
            _RETURNS_OF_ORDER.with_for_update() if for_update else _RETURNS_OF_ORDER,
            {"b_order_id": uuid.UUID(order_id)},
            locked=for_update,
        )

    async def overdue(self, limit: int) -> list[Return]:
        return await self._find(_RETURNS_OVERDUE, {"b_limit": limit}, locked=True)

    async def search(
        self, *, statuses: list[str], after: uuid.UUID | None, limit: int
    ) -> list[Return]:
        query = select(returns)
        if statuses:
            query = query.where(returns.c.status.in_(statuses))
        if after is not None:
            query = query.where(returns.c.id > after)
        return await self._find(query.order_by(returns.c.id).limit(limit), locked=False)

    def _key_of(self, aggregate: Return) -> uuid.UUID:
        return uuid.UUID(aggregate.id)

    def _to_row(self, aggregate: Return) -> Row:
        return {
            "id": uuid.UUID(aggregate.id),
            "order_id": uuid.UUID(aggregate.order_id),
            "customer_id": aggregate.customer_id,
            "status": aggregate.status.value,
            "status_reason": aggregate.status_reason,
            "reason": aggregate.reason,
            "lines": [dataclasses.asdict(line) for line in aggregate.lines],
            "currency": aggregate.currency,
            "refund_amount": aggregate.refund_amount,
            "refunded_amount": aggregate.refunded_amount,
            "return_tracking_number": aggregate.return_tracking_number,
            "stock_returned": aggregate.stock_returned,
            "refund_attempt": aggregate.refund_attempt,
            "deadline_at": aggregate.deadline_at,
            "pickup_address": (
                dataclasses.asdict(aggregate.pickup_address) if aggregate.pickup_address else None
            ),
            "created_at": aggregate.created_at,
            "updated_at": aggregate.updated_at,
        }

    def _from_row(self, row: Mapping[str, Any]) -> Return:
        return Return(
            id=str(row["id"]),
            order_id=str(row["order_id"]),
            customer_id=row["customer_id"],
            reason=row["reason"],
            lines=[ReturnLine(**line) for line in row["lines"]],
            currency=row["currency"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            status=ReturnStatus(row["status"]),
            status_reason=row["status_reason"],
            return_tracking_number=row["return_tracking_number"],
            refund_amount=row["refund_amount"],
            refunded_amount=row["refunded_amount"],
            stock_returned=row["stock_returned"],
            refund_attempt=row["refund_attempt"],
            deadline_at=row["deadline_at"],
            pickup_address=Address(**row["pickup_address"]) if row["pickup_address"] else None,
        )


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


def _order_row(order: Order) -> Row:
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
        "fulfillments": [_fulfillment_row(parcel) for parcel in order.fulfillments],
        "pending_compensations": sorted(c.value for c in order.pending_compensations),
        "deferred_compensations": sorted(c.value for c in order.deferred_compensations),
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "lines": [
            {"sku": line.sku, "quantity": line.quantity, "unit_price": line.unit_price}
            for line in order.lines
        ],
        "cancellation_reason": order.cancellation_reason,
        "resume_status": order.resume_status.value if order.resume_status else None,
        "step_attempts": order.step_attempts,
        "deadline_at": order.deadline_at,
        "pending_address": (
            dataclasses.asdict(order.pending_address) if order.pending_address else None
        ),
        "amendment": _amendment_row(order.amendment),
        "status_changed_at": order.status_changed_at or order.created_at,
        "deleted_at": order.deleted_at,
    }


def _order_from_row(row: Mapping[str, Any]) -> Order:
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
        fulfillments=[_fulfillment(parcel) for parcel in row["fulfillments"]],
        pending_compensations={Compensation(c) for c in row["pending_compensations"]},
        deferred_compensations={Compensation(c) for c in row["deferred_compensations"]},
        cancellation_reason=row["cancellation_reason"],
        resume_status=OrderStatus(row["resume_status"]) if row["resume_status"] else None,
        step_attempts=row["step_attempts"],
        deadline_at=row["deadline_at"],
        pending_address=Address(**row["pending_address"]) if row["pending_address"] else None,
        deleted_at=row["deleted_at"],
        amendment=_amendment(str(row["id"]), row["amendment"]),
        status_changed_at=row["status_changed_at"],
    )


def _amendment_row(amendment: Amendment | None) -> dict[str, Any] | None:
    if amendment is None:
        return None
    # As JSON gives it back (lists, not tuples), so an unchanged one compares equal.
    return {
        "lines": [[sku, quantity] for sku, quantity in amendment.lines],
        "previous": [[line.sku, line.quantity, line.unit_price] for line in amendment.previous],
        "step": amendment.step.value,
        "reason": amendment.reason,
        "skus": amendment.skus,
        "country": amendment.country,
        "parcels": (
            None
            if amendment.parcels is None
            else [_fulfillment_row(parcel) for parcel in amendment.parcels]
        ),
    }


def _amendment(order_id: str, row: dict[str, Any] | None) -> Amendment | None:
    if row is None:
        return None
    return Amendment(
        order_id=order_id,
        lines=[(sku, quantity) for sku, quantity in row["lines"]],
        previous=[OrderLine(sku, quantity, price) for sku, quantity, price in row["previous"]],
        step=AmendmentStep(row["step"]),
        reason=row["reason"],
        skus=row["skus"],
        country=row.get("country"),
        parcels=(
            None
            if row.get("parcels") is None
            else [_fulfillment(parcel) for parcel in row["parcels"]]
        ),
    )


def _fulfillment_row(parcel: Fulfillment) -> dict[str, Any]:
    # As JSON gives it back (lists, strings), so an unchanged parcel compares equal.
    return {
        "id": parcel.id,
        "location": parcel.location,
        "lines": [[sku, quantity] for sku, quantity in parcel.lines],
        "serves": sorted(parcel.serves) if parcel.serves is not None else None,
        "status": parcel.status.value,
        "shipment_id": parcel.shipment_id,
        "carrier": parcel.carrier,
        "tracking_number": parcel.tracking_number,
        "dispatched_at": parcel.dispatched_at.isoformat() if parcel.dispatched_at else None,
        "stock_committed": parcel.stock_committed,
        "captured_amount": parcel.captured_amount,
        "settled_by_hand": parcel.settled_by_hand,
        "cancel_requested": parcel.cancel_requested,
    }


def _fulfillment(row: dict[str, Any]) -> Fulfillment:
    return Fulfillment(
        id=row["id"],
        location=row["location"],
        lines=[(sku, quantity) for sku, quantity in row["lines"]],
        serves=frozenset(row["serves"]) if row["serves"] is not None else None,
        status=ParcelStatus(row["status"]),
        shipment_id=row["shipment_id"],
        carrier=row["carrier"],
        tracking_number=row["tracking_number"],
        dispatched_at=(
            datetime.fromisoformat(row["dispatched_at"]) if row["dispatched_at"] else None
        ),
        stock_committed=row["stock_committed"],
        captured_amount=row["captured_amount"],
        settled_by_hand=row["settled_by_hand"],
        cancel_requested=row["cancel_requested"],
    )
