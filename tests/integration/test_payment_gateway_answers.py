"""The payment service's gateway worker against a real Postgres and the gateway
simulator over HTTP: answers that come back together are applied in one transaction,
each payment getting its own outcome and events; and when one answer of such a batch
cannot be applied, the others still are, each in a transaction of its own."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from alembic import command
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import oms_payment
from oms_devtools import infra
from oms_devtools.client import eventually
from oms_devtools.stack import free_port_block
from oms_gateway_simulator.app import create_app as create_simulator
from oms_gateway_simulator.config import GatewayConfig
from oms_gateway_simulator.store import MemoryStore
from oms_payment.db.repository import ClaimedOperation
from oms_payment.db.tables import messaging
from oms_payment.db.unit_of_work import SqlPaymentUnitOfWork
from oms_payment.domain.model import Operation, OperationKind, Payment
from oms_payment.gateway.circuit import CircuitBreaker
from oms_payment.gateway.http import HttpPaymentGateway
from oms_payment.handlers.outgoing import PaymentEvents
from oms_payment.workers.gateway import GatewayWorker, LeasedOperations
from oms_runtime.db import libpq_url, sqlalchemy_url
from oms_runtime.messaging.unit_of_work import UnitOfWorkFactory
from oms_runtime.migrations import alembic_config

pytestmark = pytest.mark.integration

MIGRATIONS = Path(oms_payment.__file__).parent / "db" / "migrations"
LEASE = timedelta(seconds=30)
PAYMENTS = 6


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A database of its own: no service's relay empties its outbox."""
    _, url, _ = infra.throwaway_urls("oms_payment_answers")
    await infra.recreate_database(url)
    await asyncio.to_thread(command.upgrade, alembic_config(MIGRATIONS, url), "head")
    yield url
    await infra.drop_database(url)


@pytest.fixture
async def simulator() -> AsyncIterator[str]:
    """The gateway simulator on a port of its own; every answer takes 300 ms, so calls
    made together are answered together."""
    port = free_port_block(1)
    app = create_simulator(GatewayConfig(latency_ms=300), seed=1, store=MemoryStore(), admin_key="")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    await eventually(started, bool, 10, "the simulator to listen")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


class Worker:
    """A gateway worker like the service's, with the transactions it begins counted."""

    def __init__(self, engine: AsyncEngine, gateway_url: str) -> None:
        self.leased = LeasedOperations()
        self.unit_of_work = UnitOfWorkFactory(
            functools.partial(SqlPaymentUnitOfWork, operations_leased=self.leased.put, lease=LEASE),
            engine,
            messaging,
            events=PaymentEvents(),
        )
        self.worker = GatewayWorker(
            self.unit_of_work,
            HttpPaymentGateway(gateway_url, 5.0, CircuitBreaker(5, 30.0), max_connections=16),
            self.leased,
            timeout_seconds=5.0,
            max_attempts=3,
            retry_base_delay=0.1,
            concurrency=16,
            # No sweep during the test: what is applied, the worker applied as answered.
            poll_interval=600.0,
        )
        self.transactions = 0

        def checked_out(*_: Any) -> None:
            self.transactions += 1

        event.listen(engine.sync_engine.pool, "checkout", checked_out)

    async def transactions_so_far(self) -> int:
        return self.transactions

    async def start_payments(self, count: int) -> list[str]:
        """Payments queued in one transaction, as a batch of authorize commands would."""
        ids = [str(uuid.uuid4()) for _ in range(count)]
        async with self.unit_of_work() as uow:
            for payment_id in ids:
                uow.payments.add(
                    Payment.start(
                        payment_id=payment_id,
                        order_id=str(uuid.uuid4()),
                        amount=1500,
                        currency="EUR",
                        token="tok_ok",
                    )
                )
            await uow.commit()
        return ids


@pytest.fixture
async def engine(database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(sqlalchemy_url(database))
    yield engine
    await engine.dispose()


@pytest.fixture
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(libpq_url(database))
    yield connection
    await connection.close()


async def settled(db: asyncpg.Connection, payment_ids: list[str]) -> dict[str, tuple[str, str]]:
    """Each payment's status and the status of its authorization, once no
    authorization is pending any more."""

    async def outcome() -> dict[str, tuple[str, str]]:
        rows = await db.fetch(
            "SELECT p.id::text, p.status, o.status AS operation FROM payment.payments p "
            "JOIN payment.payment_operations o ON o.payment_id = p.id "
            "WHERE p.id = ANY($1::uuid[])",
            payment_ids,
        )
        return {r["id"]: (r["status"], r["operation"]) for r in rows}

    return await eventually(
        outcome,
        lambda found: (
            len(found) == len(payment_ids)
            and all(operation != "pending" for _, operation in found.values())
        ),
        10,
        "every authorization to be answered",
    )


async def authorized_events(db: asyncpg.Connection) -> list[str]:
    rows = await db.fetch(
        "SELECT convert_from(body, 'UTF8')::jsonb -> 'data' ->> 'payment_id' AS payment "
        "FROM payment.outbox WHERE routing_key = 'payment.authorized'"
    )
    return sorted(r["payment"] for r in rows)


async def audited_calls(db: asyncpg.Connection) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM payment.gateway_calls")
    return count


async def calls_received(simulator: str) -> int:
    async with httpx.AsyncClient() as client:
        stats = (await client.get(f"{simulator}/v1/_stats")).json()
    return sum(stats["requests_by_endpoint"].values())


async def test_answers_that_come_back_together_are_applied_in_fewer_transactions_than_answers(
    db: asyncpg.Connection, engine: AsyncEngine, simulator: str
) -> None:
    worker = Worker(engine, simulator)
    running = asyncio.create_task(worker.worker.run())
    try:
        # Its first sweep (nothing due) is behind it: not counted below.
        await eventually(worker.transactions_so_far, bool, 10, "the first sweep")
        payment_ids = await worker.start_payments(PAYMENTS)
        worker.transactions = 0
        outcome = await settled(db, payment_ids)
        applying = worker.transactions
    finally:
        await worker.worker.stop()
        await running

    assert outcome == dict.fromkeys(payment_ids, ("authorized", "succeeded"))
    assert await authorized_events(db) == sorted(payment_ids)
    assert await audited_calls(db) == PAYMENTS
    assert applying < PAYMENTS


async def test_an_answer_that_cannot_be_applied_does_not_hold_back_the_others(
    db: asyncpg.Connection,
    engine: AsyncEngine,
    simulator: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = Worker(engine, simulator)
    running = asyncio.create_task(worker.worker.run())
    try:
        payment_ids = await worker.start_payments(PAYMENTS)
        # An operation whose payment is gone by the time its answer comes back: applying
        # it fails, and with it the transaction it shares with the others' answers.
        orphan = Operation(str(uuid.uuid4()), OperationKind.AUTHORIZE, 1500)
        # (handed over with the others, so it is answered with them)
        worker.leased.put(
            [
                ClaimedOperation(
                    10**9,
                    orphan,
                    1,
                    str(uuid.uuid4()),
                    "EUR",
                    "tok_ok",
                    None,
                    None,
                    datetime.now(UTC) + LEASE,
                )
            ]
        )
        outcome = await settled(db, payment_ids)
    finally:
        await worker.worker.stop()
        await running

    assert outcome == dict.fromkeys(payment_ids, ("authorized", "succeeded"))
    assert await authorized_events(db) == sorted(payment_ids)
    # Left to the sweep once its lease runs out, and said where an operator looks.
    failed = [
        r for r in caplog.records if r.getMessage() == "gateway operation failed unexpectedly"
    ]
    assert len(failed) == 1


async def test_answers_to_calls_in_flight_when_the_worker_stops_are_applied_before_it_ends(
    db: asyncpg.Connection, engine: AsyncEngine, simulator: str
) -> None:
    worker = Worker(engine, simulator)
    running = asyncio.create_task(worker.worker.run())
    payment_ids = await worker.start_payments(PAYMENTS)
    # The calls are out (their answers take 300 ms).
    await eventually(
        lambda: calls_received(simulator), lambda n: n == PAYMENTS, 10, "the calls to go out"
    )
    await worker.worker.stop()
    await asyncio.wait_for(running, 10)

    assert await settled(db, payment_ids) == dict.fromkeys(payment_ids, ("authorized", "succeeded"))
