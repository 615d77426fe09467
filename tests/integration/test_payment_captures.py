"""Captures per parcel against a real Postgres: the payment's captures, its gateway
operations (keyed per parcel, the last one final) and the books survive the round
trip through the payment service's unit of work; and migration 0008 gives payments
made before parcels their one capture, done, in flight or failed, so they keep
working and the settlement report still counts them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import oms_payment
from oms_devtools import infra
from oms_payment.db import views
from oms_payment.db.tables import messaging
from oms_payment.db.unit_of_work import SqlPaymentUnitOfWork
from oms_payment.domain.model import Approved, Operation, OperationKind, Payment, PaymentStatus
from oms_payment.handlers.outgoing import PaymentEvents
from oms_runtime.db import libpq_url, sqlalchemy_url
from oms_runtime.migrations import alembic_config

pytestmark = pytest.mark.integration

MIGRATIONS = Path(oms_payment.__file__).parent / "db" / "migrations"


def unit_of_work(engine: AsyncEngine) -> SqlPaymentUnitOfWork:
    return SqlPaymentUnitOfWork(engine, messaging, events=PaymentEvents())


async def operations_of(connection: asyncpg.Connection, payment_id: str) -> list[tuple]:
    rows = await connection.fetch(
        "SELECT kind, amount, final, idempotency_key FROM payment.payment_operations "
        "WHERE payment_id = $1::uuid ORDER BY id",
        payment_id,
    )
    return [tuple(row) for row in rows]


async def answer(engine: AsyncEngine, operation: Operation, amount: int) -> None:
    """What the gateway worker does with an approval."""
    async with unit_of_work(engine) as uow:
        payment = await uow.payments.get(operation.payment_id, for_update=True)
        assert payment is not None
        payment.apply_gateway_answer(operation, Approved("auth-1", amount))
        await uow.commit()


async def payment_database(revision: str) -> str:
    """A database of its own (no service's relay empties its outbox) with the payment
    schema at `revision`."""
    _, url, _ = infra.throwaway_urls("oms_payment_captures")
    await infra.recreate_database(url)
    await asyncio.to_thread(command.upgrade, alembic_config(MIGRATIONS, url), revision)
    return url


@pytest.fixture
async def database_at_head() -> AsyncIterator[str]:
    url = await payment_database("head")
    yield url
    await infra.drop_database(url)


@pytest.fixture
async def database_at_0007() -> AsyncIterator[str]:
    """The payment schema as it was before parcels."""
    url = await payment_database("0007")
    yield url
    await infra.drop_database(url)


async def test_parcel_captures_round_trip_through_the_database_and_into_the_books(
    database_at_head: str,
) -> None:
    engine = create_async_engine(sqlalchemy_url(database_at_head))
    db = await asyncpg.connect(libpq_url(database_at_head))
    try:
        await _capture_two_parcels(engine, db)
    finally:
        await db.close()
        await engine.dispose()


async def _capture_two_parcels(engine: AsyncEngine, db: asyncpg.Connection) -> None:
    payment_id, order_id = str(uuid.uuid4()), f"order-{uuid.uuid4().hex[:8]}"
    async with unit_of_work(engine) as uow:
        payment = Payment.start(
            payment_id=payment_id, order_id=order_id, amount=1000, currency="SEK", token="tok_ok"
        )
        payment.authorization_approved("auth-1")
        payment.operations.clear()
        uow.payments.add(payment)
        await uow.commit()

    async with unit_of_work(engine) as uow:
        payment = await uow.payments.get_by_order(order_id, for_update=True)
        assert payment is not None
        payment.request_capture(300, "parcel-1")
        payment.request_capture(700, "parcel-2")  # waits for parcel-1's answer
        await uow.commit()
    assert await operations_of(db, payment_id) == [
        ("capture", 300, False, f"{payment_id}:capture:parcel-1")
    ]

    await answer(engine, Operation(payment_id, OperationKind.CAPTURE, 300, "parcel-1", False), 300)
    assert (await operations_of(db, payment_id))[1:] == [
        ("capture", 700, True, f"{payment_id}:capture:parcel-2")
    ]
    await answer(engine, Operation(payment_id, OperationKind.CAPTURE, 700, "parcel-2", True), 700)

    async with unit_of_work(engine) as uow:
        stored = await uow.payments.get(payment_id)
    assert stored is not None
    assert (stored.status, stored.captured_amount) == (PaymentStatus.CAPTURED, 1000)
    assert [(c.fulfillment_id, c.amount, c.status.value, c.final) for c in stored.captures] == [
        ("parcel-1", 300, "succeeded", False),
        ("parcel-2", 700, "succeeded", True),
    ]
    books = await db.fetch(
        "SELECT id, fulfillment_id, amount, currency FROM payment.capture_ledger "
        "WHERE payment_id = $1::uuid ORDER BY amount",
        payment_id,
    )
    assert [tuple(row) for row in books] == [
        (f"{payment_id}:capture:parcel-1", "parcel-1", 300, "SEK"),
        (f"{payment_id}:capture:parcel-2", "parcel-2", 700, "SEK"),
    ]
    sent = await db.fetch(
        "SELECT body FROM payment.outbox WHERE routing_key = 'payment.captured' ORDER BY id"
    )
    assert [
        (data["amount"], data["fulfillment_id"], data["captured_total"])
        for data in (json.loads(bytes(row["body"]))["data"] for row in sent)
    ] == [(300, "parcel-1", 300), (700, "parcel-2", 1000)]


# -- migration 0008: payments from before parcels ----------------------------------------


async def add_legacy_payment(
    db: asyncpg.Connection,
    *,
    status: str,
    captured: int = 0,
    capture_operation: str | None = None,
    captured_at: datetime | None = None,
) -> str:
    payment_id = str(uuid.uuid4())
    await db.execute(
        "INSERT INTO payment.payments (id, order_id, status, amount, currency, token, "
        "authorized_amount, captured_amount, gateway_authorization_id, capture_requested, "
        "captured_at) VALUES ($1::uuid, $2, $3, 1000, 'EUR', 'tok_ok', 1000, $4, 'auth-1', "
        "$5, $6)",
        payment_id,
        f"order-{payment_id[:8]}",
        status,
        captured,
        capture_operation is not None,
        captured_at,
    )
    if capture_operation is not None:
        await db.execute(
            "INSERT INTO payment.payment_operations (payment_id, kind, amount, "
            "idempotency_key, status, last_error) VALUES ($1::uuid, 'capture', 1000, $2, $3, $4)",
            payment_id,
            f"{payment_id}:capture",
            capture_operation,
            "HTTP 502 capture_refused" if capture_operation == "failed" else None,
        )
    return payment_id


async def test_migration_gives_payments_from_before_parcels_their_one_capture(
    database_at_0007: str,
) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    db = await asyncpg.connect(libpq_url(database_at_0007))
    try:
        settled = await add_legacy_payment(
            db,
            status="captured",
            captured=1000,
            capture_operation="succeeded",
            captured_at=yesterday,
        )
        in_flight = await add_legacy_payment(db, status="authorized", capture_operation="pending")
        refused = await add_legacy_payment(db, status="authorized", capture_operation="failed")
        untouched = await add_legacy_payment(db, status="authorized")

        await asyncio.to_thread(
            command.upgrade, alembic_config(MIGRATIONS, database_at_0007), "head"
        )

        captures = {
            str(row["id"]): json.loads(row["captures"])
            for row in await db.fetch("SELECT id, captures::text FROM payment.payments")
        }

        def one_capture(status: str, error: str | None = None) -> list[dict[str, object]]:
            return [
                {
                    "fulfillment_id": None,
                    "amount": 1000,
                    "status": status,
                    "final": True,
                    "error": error,
                }
            ]

        assert captures[settled] == one_capture("succeeded")
        assert captures[in_flight] == one_capture("pending")
        assert captures[refused] == one_capture("failed", "HTTP 502 capture_refused")
        assert captures[untouched] == []
        books = await db.fetch("SELECT id, amount, captured_at FROM payment.capture_ledger")
        assert [(row["id"], row["amount"], row["captured_at"]) for row in books] == [
            (f"{settled}:capture", 1000, yesterday)
        ]
    finally:
        await db.close()

    engine = create_async_engine(sqlalchemy_url(database_at_0007))
    try:
        # The capture in flight when the service was upgraded lands and settles.
        await answer(engine, Operation(in_flight, OperationKind.CAPTURE, 1000), 1000)
        # The refused one, asked again, goes out under its old key.
        async with unit_of_work(engine) as uow:
            payment = await uow.payments.get(refused, for_update=True)
            assert payment is not None
            payment.request_capture()
            [retry] = payment.operations
            await uow.commit()
        assert retry == Operation(refused, OperationKind.CAPTURE, 1000, None, final=True)

        async with unit_of_work(engine) as uow:
            landed = await uow.payments.get(in_flight)
            report = await views.settlement(
                uow.connection, yesterday - timedelta(days=1), datetime.now(UTC) + timedelta(1)
            )
        assert landed is not None and landed.status is PaymentStatus.CAPTURED
        # Each capture on its own day: the old one yesterday, the one that just landed today.
        assert sorted((row["day"], row["captured"]) for row in report) == [
            (yesterday.date(), 1000),
            (datetime.now(UTC).date(), 1000),
        ]
    finally:
        await engine.dispose()
