"""Maps payments, their gateway operations and the gateway audit log to tables."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from oms_payment.db.tables import gateway_calls, payment_operations, payments, refunds
from oms_payment.domain.model import Operation, OperationKind, Payment, PaymentStatus, Refund
from oms_payment.gateway.base import CallRecord
from oms_runtime import tracing

_PAYMENT_FIELDS = [
    f.name
    for f in dataclasses.fields(Payment)
    if f.name not in ("id", "operations", "events", "refunds")
]


@dataclasses.dataclass(frozen=True)
class ClaimedOperation:
    """An operation this worker may carry out now, with what the call needs."""

    id: int
    operation: Operation
    attempts: int
    order_id: str
    currency: str
    token: str
    gateway_authorization_id: str | None
    traceparent: str | None


class PaymentRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        try:
            key = uuid.UUID(payment_id)
        except ValueError:
            return None
        return await self._one(select(payments).where(payments.c.id == key), for_update)

    async def get_by_order(self, order_id: str, *, for_update: bool = False) -> Payment | None:
        return await self._one(select(payments).where(payments.c.order_id == order_id), for_update)

    async def _one(self, query: Any, for_update: bool) -> Payment | None:
        if for_update:
            query = query.with_for_update()
        row = (await self._connection.execute(query)).mappings().first()
        if row is None:
            return None
        fields = {name: row[name] for name in _PAYMENT_FIELDS}
        fields["status"] = PaymentStatus(fields["status"])
        refund_rows: Any = []
        if row["captured_amount"] > 0:  # only captured money is ever refunded
            refund_rows = await self._connection.execute(
                select(refunds)
                .where(refunds.c.payment_id == row["id"])
                .order_by(refunds.c.created_at)
            )
        return Payment(
            id=str(row["id"]),
            refunds=[Refund(r.id, r.amount, r.reason, r.status) for r in refund_rows],
            **fields,
        )

    async def add(self, payment: Payment) -> None:
        await self._connection.execute(payments.insert().values(**_row(payment)))
        await self._save_refunds(payment)
        await self._add_operations(payment)

    async def save(self, payment: Payment) -> None:
        row = _row(payment)
        del row["id"]
        if payment.captured_amount > 0:
            row["captured_at"] = func.coalesce(payments.c.captured_at, func.now())
        await self._connection.execute(
            update(payments)
            .where(payments.c.id == uuid.UUID(payment.id))
            .values(**row, updated_at=func.now())
        )
        await self._save_refunds(payment)
        await self._add_operations(payment)

    async def _save_refunds(self, payment: Payment) -> None:
        if payment.refunds:
            statement = pg_insert(refunds)
            await self._connection.execute(
                statement.on_conflict_do_update(
                    index_elements=["id"],
                    set_={
                        "status": statement.excluded.status,
                        "updated_at": func.now(),
                        "completed_at": case(
                            (statement.excluded.status == "succeeded", func.now()), else_=None
                        ),
                    },
                    where=refunds.c.status != statement.excluded.status,
                ),
                [
                    {
                        "id": r.id,
                        "payment_id": uuid.UUID(payment.id),
                        "amount": r.amount,
                        "reason": r.reason,
                        "status": r.status,
                    }
                    for r in payment.refunds
                ],
            )

    async def _add_operations(self, payment: Payment) -> None:
        if not payment.operations:
            return
        statement = pg_insert(payment_operations)
        # The key is unique: asking twice for the same operation queues it once;
        # asking again for one that failed for good starts it over (an operator's
        # or the saga's retry), with the same key so the gateway still acts once.
        await self._connection.execute(
            statement.on_conflict_do_update(
                index_elements=["idempotency_key"],
                set_={
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": func.now(),
                    "updated_at": func.now(),
                },
                where=payment_operations.c.status == "failed",
            ),
            [
                {
                    "payment_id": uuid.UUID(op.payment_id),
                    "kind": op.kind.value,
                    "amount": op.amount,
                    "reference": op.reference,
                    "idempotency_key": op.idempotency_key,
                    "traceparent": tracing.outgoing_traceparent(),
                }
                for op in payment.operations
            ],
        )
        payment.operations.clear()


class OperationRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def claim_due(self, limit: int, lease: timedelta) -> list[ClaimedOperation]:
        """Take up to `limit` due operations for this worker.

        The lease pushes `next_attempt_at` ahead, so other workers leave them alone
        while we call the gateway; if we die, the lease runs out and another worker
        retries with the same idempotency key.
        """
        due = (
            select(payment_operations.c.id)
            .where(payment_operations.c.status == "pending")
            .where(payment_operations.c.next_attempt_at <= func.now())
            .order_by(payment_operations.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        rows = await self._connection.execute(
            update(payment_operations)
            .where(payment_operations.c.id.in_(due))
            .where(payments.c.id == payment_operations.c.payment_id)
            .values(
                attempts=payment_operations.c.attempts + 1,
                next_attempt_at=func.now() + lease,
                updated_at=func.now(),
            )
            .returning(
                payment_operations.c.id,
                payment_operations.c.payment_id,
                payment_operations.c.kind,
                payment_operations.c.amount,
                payment_operations.c.reference,
                payment_operations.c.attempts,
                payment_operations.c.traceparent,
                payments.c.order_id,
                payments.c.currency,
                payments.c.token,
                payments.c.gateway_authorization_id,
            )
        )
        return [
            ClaimedOperation(
                row.id,
                Operation(str(row.payment_id), OperationKind(row.kind), row.amount, row.reference),
                row.attempts,
                row.order_id,
                row.currency,
                row.token,
                row.gateway_authorization_id,
                row.traceparent,
            )
            for row in rows
        ]

    async def finish(self, operation_id: int, *, succeeded: bool, error: str | None = None) -> None:
        await self._connection.execute(
            update(payment_operations)
            .where(payment_operations.c.id == operation_id)
            .values(
                status="succeeded" if succeeded else "failed",
                last_error=error,
                updated_at=func.now(),
            )
        )

    async def retry_later(self, operation_id: int, delay: timedelta, error: str) -> None:
        await self._connection.execute(
            update(payment_operations)
            .where(payment_operations.c.id == operation_id)
            .values(next_attempt_at=func.now() + delay, last_error=error, updated_at=func.now())
        )

    async def record_call(self, payment_id: str, call: CallRecord) -> None:
        await self._connection.execute(
            gateway_calls.insert().values(
                payment_id=uuid.UUID(payment_id),
                operation=call.operation,
                idempotency_key=call.idempotency_key,
                request=call.request,
                status_code=call.status_code,
                response=call.response,
                error=call.error,
                latency_ms=call.latency_ms,
            )
        )


def _row(payment: Payment) -> dict[str, Any]:
    row = {name: getattr(payment, name) for name in _PAYMENT_FIELDS}
    row["status"] = PaymentStatus(payment.status).value
    row["id"] = uuid.UUID(payment.id)
    return row
