"""The payment service's gateway operations against a real Postgres and the gateway
simulator over HTTP.

Queued: a batch of commands queues its payments' operations with its commit, all in
one statement, and hands them to the worker only once committed (a batch rolled back
hands nothing over; an operation that failed for good is queued again when asked
again); a new payment and its operations are one transaction. Answered: answers that
come back together are applied in one transaction, each payment getting its own
outcome and events; and when one answer of such a batch cannot be applied, the
others still are, each in a transaction of its own."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Callable
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
from oms_contracts import Envelope
from oms_contracts import payment as payment_msgs
from oms_devtools import infra
from oms_devtools.client import eventually
from oms_devtools.stack import free_port_block
from oms_gateway_simulator.app import create_app as create_simulator
from oms_gateway_simulator.config import GatewayConfig
from oms_gateway_simulator.store import MemoryStore
from oms_payment.db.repository import ClaimedOperation, load_payments_for_batch
from oms_payment.db.tables import messaging
from oms_payment.db.unit_of_work import SqlPaymentUnitOfWork
from oms_payment.domain.model import Operation, OperationKind, Payment
from oms_payment.gateway.circuit import CircuitBreaker
from oms_payment.gateway.http import HttpPaymentGateway
from oms_payment.handlers.messages import authorize_payment
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


def units_of_work(
    engine: AsyncEngine, operations_leased: Callable[[list[ClaimedOperation]], None]
) -> UnitOfWorkFactory[SqlPaymentUnitOfWork]:
    """The payment service's units of work, as it builds them, handing the operations
    they queue to `operations_leased` once committed."""
    return UnitOfWorkFactory(
        functools.partial(SqlPaymentUnitOfWork, operations_leased=operations_leased, lease=LEASE),
        engine,
        messaging,
        batch_loader=load_payments_for_batch,
        events=PaymentEvents(),
    )


class Worker:
    """A gateway worker like the service's, with the transactions it begins counted."""

    def __init__(self, engine: AsyncEngine, gateway_url: str) -> None:
        self.leased = LeasedOperations()
        self.unit_of_work = units_of_work(engine, self.leased.put)
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


class Queue:
    """The payment service's consumer side: a unit of work per command, batches in
    one shared transaction, and what is handed to the gateway worker."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.handed: list[ClaimedOperation] = []
        self.unit_of_work = units_of_work(engine, self.handed.extend)

    async def authorize(self, orders: list[str], *, commit: bool = True) -> None:
        """One batch of authorize commands, one per order given (an order given twice:
        a command sent twice), handled as the consumer handles a batch."""
        commands = [
            payment_msgs.AuthorizePayment(
                order_id=order_id, amount=1500, currency="EUR", payment_token="tok_ok"
            )
            for order_id in orders
        ]
        envelopes = [
            Envelope.wrap(command, correlation_id=command.order_id) for command in commands
        ]
        async with self.unit_of_work.shared_transaction() as shared:
            assert await shared.claim(envelopes) == {e.message_id for e in envelopes}
            await self.unit_of_work.load_batch(shared, envelopes)
            for command, envelope in zip(commands, envelopes, strict=True):
                async with self.unit_of_work.for_message(envelope, shared) as uow:
                    await authorize_payment(command, uow)
            assert self.handed == [], "handed to the worker before the commit"
            if commit:
                await shared.commit()


async def queued_operations(db: asyncpg.Connection) -> dict[str, tuple[int, str, int]]:
    """Per order: its operation's id, status and attempts."""
    rows = await db.fetch(
        "SELECT p.order_id, o.id, o.status, o.attempts FROM payment.payment_operations o "
        "JOIN payment.payments p ON p.id = o.payment_id"
    )
    return {r["order_id"]: (r["id"], r["status"], r["attempts"]) for r in rows}


async def test_a_batch_of_commands_queues_each_operation_once_and_hands_it_over_once_committed(
    db: asyncpg.Connection, engine: AsyncEngine
) -> None:
    queue = Queue(engine)
    orders = [f"order-{n}" for n in range(4)]

    await queue.authorize([*orders, orders[0]])

    queued = await queued_operations(db)
    assert sorted(queued) == orders
    assert {(status, attempts) for _, status, attempts in queued.values()} == {("pending", 1)}
    # Leased to this process: the worker carries them out, by their row's id.
    assert sorted((op.order_id, op.id, op.operation.kind) for op in queue.handed) == [
        (order_id, queued[order_id][0], OperationKind.AUTHORIZE) for order_id in orders
    ]
    assert all(op.token == "tok_ok" and op.attempts == 1 for op in queue.handed)
    due = await db.fetchval(
        "SELECT count(*) FROM payment.payment_operations WHERE next_attempt_at <= now()"
    )
    assert due == 0


async def test_a_batch_rolled_back_queues_and_hands_over_nothing(
    db: asyncpg.Connection, engine: AsyncEngine
) -> None:
    queue = Queue(engine)

    await queue.authorize(["order-a", "order-b"], commit=False)

    assert await queued_operations(db) == {}
    assert await db.fetchval("SELECT count(*) FROM payment.payments") == 0
    assert queue.handed == []


async def test_an_operation_that_failed_for_good_is_queued_again_when_asked_again(
    db: asyncpg.Connection, engine: AsyncEngine
) -> None:
    queue = Queue(engine)
    await queue.authorize(["order-a", "order-b"])
    queued = await queued_operations(db)
    first_a, first_b = queued["order-a"][0], queued["order-b"][0]
    await db.execute(
        "UPDATE payment.payment_operations SET status = 'failed', attempts = 3 WHERE id = $1",
        first_a,
    )
    queue.handed.clear()

    async with queue.unit_of_work() as uow:
        for order_id in ("order-a", "order-b"):
            payment = await uow.payments.get_by_order(order_id, for_update=True)
            assert payment is not None
            # The saga's retry: the same authorization asked for again.
            payment.operations.append(Operation(payment.id, OperationKind.AUTHORIZE, 1500))
        await uow.commit()

    # The failed one starts over, in its own row; the one still pending is left be.
    assert await queued_operations(db) == {
        "order-a": (first_a, "pending", 1),
        "order-b": (first_b, "pending", 1),
    }
    assert [(op.id, op.order_id) for op in queue.handed] == [(first_a, "order-a")]


async def test_a_new_payment_and_its_operations_are_one_transaction(
    db: asyncpg.Connection, engine: AsyncEngine
) -> None:
    queue = Queue(engine)
    payment = Payment.start(
        payment_id=str(uuid.uuid4()),
        order_id="order-a",
        amount=1500,
        currency="EUR",
        token="tok_ok",
    )
    # An operation that cannot be queued (its payment has no row): the payment's own
    # row, written first, must not stay behind either.
    payment.operations.append(Operation(str(uuid.uuid4()), OperationKind.AUTHORIZE, 1500))

    with pytest.raises(asyncpg.ForeignKeyViolationError):
        async with queue.unit_of_work() as uow:
            uow.payments.add(payment)
            await uow.commit()

    assert await db.fetchval("SELECT count(*) FROM payment.payments") == 0
    assert await queued_operations(db) == {}
    assert queue.handed == []
