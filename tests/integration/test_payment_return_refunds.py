"""A return's refund against a real Postgres: the refund keeps its return, why it
failed and whether the gateway never answered, through the payment service's unit
of work; its gateway operation is keyed by (return, attempt); and a refund the
gateway never answered is queued again under that same key (the operation that
failed starts over), never as a second one."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from oms_devtools import infra
from oms_payment.db import views
from oms_payment.domain.model import (
    Approved,
    GatewayAnswer,
    GaveUp,
    Operation,
    OperationKind,
    Payment,
)
from oms_runtime.db import libpq_url, sqlalchemy_url

from .test_payment_captures import payment_database, unit_of_work

pytestmark = pytest.mark.integration


@pytest.fixture
async def database() -> AsyncIterator[str]:
    url = await payment_database("head")
    yield url
    await infra.drop_database(url)


async def captured_payment(engine: AsyncEngine, amount: int) -> tuple[str, str]:
    payment_id, order_id = str(uuid.uuid4()), f"order-{uuid.uuid4().hex[:8]}"
    payment = Payment.start(
        payment_id=payment_id, order_id=order_id, amount=amount, currency="EUR", token="tok_ok"
    )
    payment.authorization_approved("auth-1")
    payment.request_capture()
    payment.capture_succeeded(amount)
    payment.operations.clear()
    async with unit_of_work(engine) as uow:
        uow.payments.add(payment)
        await uow.commit()
    return payment_id, order_id


async def refund_return(engine: AsyncEngine, order_id: str, return_id: str, attempt: int) -> None:
    async with unit_of_work(engine) as uow:
        payment = await uow.payments.get_by_order(order_id, for_update=True)
        assert payment is not None
        payment.refund_return(return_id, attempt, 300)
        await uow.commit()


async def answer(engine: AsyncEngine, operation: Operation, result: GatewayAnswer) -> None:
    """What the gateway worker does with the gateway's last word."""
    async with unit_of_work(engine) as uow:
        payment = await uow.payments.get(operation.payment_id, for_update=True)
        assert payment is not None
        payment.apply_gateway_answer(operation, result)
        await uow.commit()


async def test_a_refund_never_answered_is_kept_so_and_asked_again_under_its_own_key(
    database: str,
) -> None:
    engine = create_async_engine(sqlalchemy_url(database))
    db = await asyncpg.connect(libpq_url(database))
    try:
        payment_id, order_id = await captured_payment(engine, 1000)
        refund = Operation(payment_id, OperationKind.REFUND, 300, "return-ret-1-0")

        await refund_return(engine, order_id, "ret-1", 0)
        await db.execute(  # the worker's bounded attempts ran out
            "UPDATE payment.payment_operations SET status = 'failed' WHERE payment_id = $1::uuid",
            payment_id,
        )
        await answer(engine, refund, GaveUp("HTTP 503 unavailable"))
        async with unit_of_work(engine) as uow:
            failed = await views.refunds_of(uow.connection, uuid.UUID(payment_id))
        assert [(r["id"], r["return_id"], r["status"], r["error"]) for r in failed] == [
            ("return-ret-1-0", "ret-1", "failed", "gateway_unavailable: HTTP 503 unavailable")
        ]

        await refund_return(engine, order_id, "ret-1", 1)  # an operator's retry

        operations = await db.fetch(
            "SELECT kind, amount, idempotency_key, status FROM payment.payment_operations "
            "WHERE payment_id = $1::uuid ORDER BY id",
            payment_id,
        )
        assert [tuple(row) for row in operations] == [
            ("refund", 300, f"{payment_id}:refund:return-ret-1-0", "pending")
        ]
        await answer(engine, refund, Approved("ref_1", 300))
        async with unit_of_work(engine) as uow:
            stored = await uow.payments.get(payment_id)
            refunds = await views.refunds_of(uow.connection, uuid.UUID(payment_id))
        assert stored is not None
        assert stored.refunded_amount == 300
        assert [(r["id"], r["status"], r["error"], r["unanswered"]) for r in refunds] == [
            ("return-ret-1-0", "succeeded", None, False)
        ]
        sent = await db.fetch(
            "SELECT routing_key, body FROM payment.outbox "
            "WHERE routing_key LIKE 'payment.refund%' ORDER BY id"
        )
        assert [
            (row["routing_key"], json.loads(bytes(row["body"]))["data"]["return_id"])
            for row in sent
        ] == [("payment.refund_failed", "ret-1"), ("payment.refunded", "ret-1")]
    finally:
        await db.close()
        await engine.dispose()
