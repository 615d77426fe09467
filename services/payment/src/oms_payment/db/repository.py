"""Maps payments, their gateway operations and the gateway audit log to tables."""

from __future__ import annotations

import dataclasses
import functools
import uuid
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import asyncpg
from sqlalchemy import Interval, bindparam, case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from oms_contracts import Envelope
from oms_payment.db.tables import (
    capture_ledger,
    gateway_calls,
    payment_operations,
    payments,
    refunds,
    without_token,
)
from oms_payment.domain.model import (
    Capture,
    CaptureStatus,
    Operation,
    OperationKind,
    Payment,
    PaymentStatus,
    Refund,
)
from oms_payment.gateway.base import CallRecord
from oms_runtime import tracing
from oms_runtime.bulk import UPDATED_AT_NOW, Computed, insert_from_arrays
from oms_runtime.messaging.unit_of_work import SharedTransaction, UnitOfWork
from oms_runtime.repository import Repository, Row

_PAYMENT_FIELDS = [
    f.name
    for f in dataclasses.fields(Payment)
    if f.name not in ("id", "operations", "events", "refunds", "captures")
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
    # Until when no other worker takes it (its `next_attempt_at`).
    leased_until: datetime


# Statements are built once: constructing them per call cost more CPU than the
# round trip they make (SQLAlchemy's construction and cache-key work).
_GET_BY_ORDER = select(payments).where(payments.c.order_id == bindparam("b_order_id"))
_GET_BY_ORDER_FOR_UPDATE = _GET_BY_ORDER.with_for_update()
_REFUNDS = (
    select(refunds).where(refunds.c.payment_id == bindparam("b_id")).order_by(refunds.c.created_at)
)
_new_refund = pg_insert(refunds)
_SAVE_REFUNDS = _new_refund.on_conflict_do_update(
    index_elements=["id"],
    set_={
        "status": _new_refund.excluded.status,
        "error": _new_refund.excluded.error,
        "unanswered": _new_refund.excluded.unanswered,
        "updated_at": func.now(),
        "completed_at": case((_new_refund.excluded.status == "succeeded", func.now()), else_=None),
    },
    where=refunds.c.status != _new_refund.excluded.status,
)
# The key is unique: asking twice for the same operation queues it once; asking
# again for one that failed for good starts it over (an operator's or the saga's
# retry), with the same key so the gateway still acts once (a capture with what it
# settles now: its amount, and whether it is the last). Either way the
# operation is queued leased to this process (its first attempt counted), whose
# gateway worker carries it out as soon as the transaction commits; if the process
# dies first, the lease runs out and any worker's sweep takes it.
_REQUEUE_FAILED = (
    " ON CONFLICT (idempotency_key) DO UPDATE SET status = 'pending',"
    " amount = excluded.amount, final = excluded.final, attempts = 1,"
    " next_attempt_at = excluded.next_attempt_at, updated_at = now()"
    " WHERE payment_operations.status = 'failed'"
    " RETURNING id, idempotency_key"
)
# Set once, when money is first captured.
_CAPTURED_AT: Computed = (
    (
        "captured_at",
        'CASE WHEN v."captured_amount" > 0 THEN coalesce(t."captured_at", now()) '
        'ELSE t."captured_at" END',
    ),
    *UPDATED_AT_NOW,
)
_DUE = (
    select(payment_operations.c.id)
    .where(payment_operations.c.status == "pending")
    .where(payment_operations.c.next_attempt_at <= func.now())
    .order_by(payment_operations.c.next_attempt_at)
    .limit(bindparam("b_limit"))
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
_CLAIM = (
    update(payment_operations)
    .where(payment_operations.c.id.in_(_DUE))
    .where(payments.c.id == payment_operations.c.payment_id)
    .values(
        attempts=payment_operations.c.attempts + 1,
        next_attempt_at=func.now() + bindparam("b_lease", type_=Interval),
        updated_at=func.now(),
    )
    .returning(
        payment_operations.c.id,
        payment_operations.c.payment_id,
        payment_operations.c.kind,
        payment_operations.c.amount,
        payment_operations.c.reference,
        payment_operations.c.final,
        payment_operations.c.attempts,
        payment_operations.c.traceparent,
        payments.c.order_id,
        payments.c.currency,
        payments.c.token,
        payments.c.gateway_authorization_id,
    )
)
_RETRY_LATER = (
    update(payment_operations)
    .where(payment_operations.c.id == bindparam("b_id"))
    .values(
        next_attempt_at=func.now() + bindparam("b_delay", type_=Interval),
        last_error=bindparam("b_error"),
        updated_at=func.now(),
    )
)


async def load_payments_for_batch(shared: SharedTransaction, envelopes: list[Envelope]) -> None:
    """Lock and read, in one statement, the payments of the orders a batch of commands
    is about; the batch's handlers then find them (or that there is none) in memory."""
    order_ids = {envelope.data.get("order_id") for envelope in envelopes}
    await PaymentRepository.preload_by(
        shared, "order_id", [order_id for order_id in order_ids if isinstance(order_id, str)]
    )


async def load_payments_by_id(shared: SharedTransaction, payment_ids: list[str]) -> None:
    """Lock and read, in one statement, the payments whose gateway answers a batch
    applies."""
    await PaymentRepository.preload(shared, [uuid.UUID(payment_id) for payment_id in payment_ids])


# Called with the operations a committed transaction queued (leased to this process).
OperationsLeased = Callable[[list[ClaimedOperation]], None]


class PaymentRepository(Repository[Payment]):
    table = payments
    key = "id"
    computed: ClassVar[Computed] = _CAPTURED_AT

    def __init__(
        self,
        unit_of_work: UnitOfWork,
        operations_leased: OperationsLeased | None,
        lease: timedelta,
    ) -> None:
        super().__init__(unit_of_work)
        self._operations_leased = operations_leased
        self._lease = lease
        # Tracked payments whose refunds were read.
        self._with_refunds: set[str] = set()

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        try:
            key = uuid.UUID(payment_id)
        except ValueError:
            return None
        payment = await self._get(key, for_update=for_update)
        return await self._with_its_refunds(payment, tracked=for_update)

    async def get_by_order(self, order_id: str, *, for_update: bool = False) -> Payment | None:
        statement = _GET_BY_ORDER_FOR_UPDATE if for_update else _GET_BY_ORDER
        payment = await self._get_by(
            "order_id", order_id, statement, {"b_order_id": order_id}, for_update=for_update
        )
        return await self._with_its_refunds(payment, tracked=for_update)

    def add(self, payment: Payment) -> None:
        self._add(payment)

    def book_capture(self, payment: Payment, fulfillment_id: str | None, amount: int) -> None:
        """Money the gateway captured, into the books with the commit."""
        key = Operation(payment.id, OperationKind.CAPTURE, amount, fulfillment_id).idempotency_key
        self._unit_of_work.insert_on_commit(
            capture_ledger,
            [
                {
                    "id": key,
                    "payment_id": uuid.UUID(payment.id),
                    "fulfillment_id": fulfillment_id,
                    "amount": amount,
                    "currency": payment.currency,
                }
            ],
        )

    async def _with_its_refunds(self, payment: Payment | None, *, tracked: bool) -> Payment | None:
        # Only captured money is ever refunded.
        if payment is None or payment.captured_amount == 0 or payment.id in self._with_refunds:
            return payment
        rows = await self._connection.execute(_REFUNDS, {"b_id": uuid.UUID(payment.id)})
        payment.refunds = [
            Refund(r.id, r.amount, r.reason, r.status, r.return_id, r.error, r.unanswered)
            for r in rows
        ]
        if tracked:
            self._with_refunds.add(payment.id)
        return payment

    def _key_of(self, payment: Payment) -> uuid.UUID:
        return uuid.UUID(payment.id)

    def _to_row(self, payment: Payment) -> Row:
        return _row(payment)

    def _from_row(self, row: Mapping[str, Any]) -> Payment:
        fields = {name: row[name] for name in _PAYMENT_FIELDS}
        fields["status"] = PaymentStatus(fields["status"])
        captures = [
            Capture(
                c["fulfillment_id"],
                c["amount"],
                CaptureStatus(c["status"]),
                c["final"],
                c["error"],
            )
            for c in row["captures"]
        ]
        return Payment(id=str(row["id"]), captures=captures, **fields)

    async def _write_along(self, payment: Payment) -> None:
        await self._save_refunds(payment)
        self._add_operations(payment)

    async def _save_refunds(self, payment: Payment) -> None:
        if payment.refunds:
            await self._connection.execute(
                _SAVE_REFUNDS,
                [
                    {
                        "id": r.id,
                        "payment_id": uuid.UUID(payment.id),
                        "amount": r.amount,
                        "reason": r.reason,
                        "status": r.status,
                        "return_id": r.return_id,
                        "error": r.error,
                        "unanswered": r.unanswered,
                    }
                    for r in payment.refunds
                ],
            )

    def _add_operations(self, payment: Payment) -> None:
        """Queue the payment's new operations with the commit: after the statement
        that inserts a new payment's row, in one statement with every other payment's
        of the transaction (a batch's)."""
        if not payment.operations:
            return
        leased_until = datetime.now(UTC) + self._lease
        traceparent = tracing.outgoing_traceparent()
        self._unit_of_work.follow_up_on_commit(
            _queue_operations,
            [
                _Queued(
                    ClaimedOperation(
                        0,
                        operation,
                        1,
                        payment.order_id,
                        payment.currency,
                        payment.token,
                        payment.gateway_authorization_id,
                        traceparent,
                        leased_until,
                    ),
                    self._operations_leased,
                )
                for operation in payment.operations
            ],
        )
        payment.operations.clear()


@dataclasses.dataclass(frozen=True)
class _Queued:
    """An operation to queue, as the worker will carry it out, and who to tell."""

    leased: ClaimedOperation
    tell: OperationsLeased | None


async def _queue_operations(
    connection: asyncpg.Connection, queued: list[_Queued]
) -> list[Callable[[], None]]:
    # One row per key: a second ask for an operation within the transaction is the
    # no-op it would have been in a transaction of its own.
    by_key: dict[str, _Queued] = {}
    for item in queued:
        by_key.setdefault(item.leased.operation.idempotency_key, item)
    sql, arguments = insert_from_arrays(
        payment_operations,
        [
            {
                "payment_id": uuid.UUID(item.leased.operation.payment_id),
                "kind": item.leased.operation.kind.value,
                "amount": item.leased.operation.amount,
                "reference": item.leased.operation.reference,
                "final": item.leased.operation.final,
                "idempotency_key": key,
                "traceparent": item.leased.traceparent,
                "attempts": 1,
                "next_attempt_at": item.leased.leased_until,
            }
            for key, item in by_key.items()
        ],
    )
    told: dict[OperationsLeased, list[ClaimedOperation]] = {}
    for row in await connection.fetch(sql + _REQUEUE_FAILED, *arguments):
        item = by_key[row["idempotency_key"]]
        if item.tell is not None:
            told.setdefault(item.tell, []).append(dataclasses.replace(item.leased, id=row["id"]))
    return [functools.partial(tell, leased) for tell, leased in told.items()]


class OperationRepository:
    def __init__(self, connection: AsyncConnection, unit_of_work: UnitOfWork) -> None:
        self._connection = connection
        # Weak, as every repository's (`oms_runtime.repository.Repository`).
        self._unit_of_work = weakref.proxy(unit_of_work)

    async def claim_due(self, limit: int, lease: timedelta) -> list[ClaimedOperation]:
        """Take up to `limit` due operations for this worker.

        The lease pushes `next_attempt_at` ahead, so other workers leave them alone
        while we call the gateway; if we die, the lease runs out and another worker
        retries with the same idempotency key.
        """
        leased_until = datetime.now(UTC) + lease
        rows = await self._connection.execute(_CLAIM, {"b_limit": limit, "b_lease": lease})
        return [
            ClaimedOperation(
                row.id,
                Operation(
                    str(row.payment_id),
                    OperationKind(row.kind),
                    row.amount,
                    row.reference,
                    row.final,
                ),
                row.attempts,
                row.order_id,
                row.currency,
                row.token,
                row.gateway_authorization_id,
                row.traceparent,
                leased_until,
            )
            for row in rows
        ]

    def finish(self, operation_id: int, *, succeeded: bool, error: str | None = None) -> None:
        """Mark the operation done, with the commit."""
        self._unit_of_work.update_on_commit(
            payment_operations,
            "id",
            {
                "id": operation_id,
                "status": "succeeded" if succeeded else "failed",
                "last_error": error,
            },
            computed=UPDATED_AT_NOW,
        )

    async def retry_later(self, operation_id: int, delay: timedelta, error: str) -> None:
        await self._connection.execute(
            _RETRY_LATER, {"b_id": operation_id, "b_delay": delay, "b_error": error}
        )

    async def erase_card_tokens(self, payment_id: str) -> None:
        """Remove the card token from the payment's audit log (its requests)."""
        await self._connection.execute(
            update(gateway_calls)
            .where(gateway_calls.c.payment_id == uuid.UUID(payment_id))
            .where(gateway_calls.c.request.has_key("token"))
            .values(request=without_token(gateway_calls.c.request))
        )

    def record_call(self, payment_id: str, call: CallRecord) -> None:
        """Add the call to the audit log, with the commit."""
        self._unit_of_work.insert_on_commit(
            gateway_calls,
            [
                {
                    "payment_id": uuid.UUID(payment_id),
                    "operation": call.operation,
                    "idempotency_key": call.idempotency_key,
                    "request": call.request,
                    "status_code": call.status_code,
                    "response": call.response,
                    "error": call.error,
                    "latency_ms": call.latency_ms,
                }
            ],
        )


def _row(payment: Payment) -> Row:
    row = {name: getattr(payment, name) for name in _PAYMENT_FIELDS}
    row["status"] = PaymentStatus(payment.status).value
    row["id"] = uuid.UUID(payment.id)
    row["captures"] = [
        {
            "fulfillment_id": c.fulfillment_id,
            "amount": c.amount,
            "status": c.status.value,
            "final": c.final,
            "error": c.error,
        }
        for c in payment.captures
    ]
    return row
