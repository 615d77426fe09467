"""The reliability plumbing every service relies on, against real Postgres and RabbitMQ:
transactional outbox, publisher confirms, inbox deduplication, retries, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aio_pika
import pytest
from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from oms_contracts import Envelope
from oms_contracts import inventory as inventory_msgs
from oms_contracts import order as order_msgs
from oms_devtools.client import eventually
from oms_devtools.faultproxy import FaultProxy
from oms_runtime import metrics
from oms_runtime.db import libpq_url
from oms_runtime.messaging.broker import Broker
from oms_runtime.messaging.consumer import (
    ATTEMPT_HEADER,
    ERROR_HEADER,
    MessageConsumer,
    dead_letter_queue_name,
)
from oms_runtime.messaging.relay import OutboxRelay
from oms_runtime.messaging.tables import MessagingTables
from oms_runtime.messaging.unit_of_work import UnitOfWork, UnitOfWorkFactory

from .conftest import effects

pytestmark = pytest.mark.integration


def completed(order_id: str) -> order_msgs.OrderCompleted:
    return order_msgs.OrderCompleted(order_id=order_id)


async def outbox_count(engine: AsyncEngine, tables: MessagingTables) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(tables.outbox)) or 0)


async def effect_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(effects)) or 0)


def relay_for(engine: AsyncEngine, tables: MessagingTables, broker: Broker) -> OutboxRelay:
    return OutboxRelay(engine, tables, broker, listen_dsn=None, batch_size=50)


async def subscriber(broker: Broker, routing_key: str) -> aio_pika.abc.AbstractQueue:
    channel = await broker.channel()
    exchange = await channel.declare_exchange(
        "oms.events", aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, routing_key)
    return queue


async def drain(
    queue: aio_pika.abc.AbstractQueue, expect: int, timeout: float = 5.0
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    received: list[aio_pika.abc.AbstractIncomingMessage] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(received) < expect and asyncio.get_running_loop().time() < deadline:
        message = await queue.get(fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        await message.ack()
        received.append(message)
    return received


def handing_over_to(
    relay: OutboxRelay, engine: AsyncEngine, tables: MessagingTables
) -> UnitOfWorkFactory[UnitOfWork]:
    """Units of work that hand their committed messages to `relay`."""
    factory = UnitOfWorkFactory(UnitOfWork, engine, tables)
    factory.delivery.hand_over = relay.hand_over
    return factory


async def command_queue(broker: Broker, routing_key: str) -> aio_pika.abc.AbstractQueue:
    """A queue for a command, so the broker stops returning it."""
    channel = await broker.channel()
    commands = await channel.declare_exchange(
        "oms.commands", aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(commands, routing_key)
    return queue


async def test_committed_messages_are_published_and_rolled_back_ones_never_are(
    engine: AsyncEngine, clean_tables: MessagingTables, broker: Broker
) -> None:
    queue = await subscriber(broker, "order.completed")
    committed = completed("kept")
    async with UnitOfWork(engine, clean_tables) as uow:
        envelope = uow.publish(committed)
        await uow.commit()
    with pytest.raises(RuntimeError):
        async with UnitOfWork(engine, clean_tables) as uow:
            uow.publish(completed("rolled-back"))
            raise RuntimeError("the state change failed")

    assert await relay_for(engine, clean_tables, broker).publish_pending() == 1
    received = await drain(queue, expect=2, timeout=1.0)
    assert [m.message_id for m in received] == [str(envelope.message_id)]
    body = Envelope.model_validate_json(received[0].body)
    assert body.payload(order_msgs.OrderCompleted).order_id == "kept"
    assert await outbox_count(engine, clean_tables) == 0


async def test_a_command_nobody_can_receive_yet_stays_in_the_outbox_until_someone_can(
    engine: AsyncEngine, clean_tables: MessagingTables, broker: Broker
) -> None:
    async with UnitOfWork(engine, clean_tables) as uow:
        uow.publish(inventory_msgs.CommitStock(order_id=f"o-{uuid.uuid4()}"))
        await uow.commit()
    relay = relay_for(engine, clean_tables, broker)
    with pytest.raises(aio_pika.exceptions.DeliveryError):
        await relay.publish_pending()
    assert await outbox_count(engine, clean_tables) == 1

    queue = await command_queue(broker, "inventory.commit_stock")
    assert await relay.publish_pending() == 1
    assert len(await drain(queue, expect=1)) == 1
    assert await outbox_count(engine, clean_tables) == 0


async def test_a_command_nobody_can_receive_does_not_hold_back_the_messages_sent_with_it(
    engine: AsyncEngine, clean_tables: MessagingTables, broker: Broker
) -> None:
    events = await subscriber(broker, "order.completed")
    async with UnitOfWork(engine, clean_tables) as uow:
        uow.publish(inventory_msgs.CommitStock(order_id=f"o-{uuid.uuid4()}"))
        event = uow.publish(completed("sent alongside"))
        await uow.commit()
    relay = relay_for(engine, clean_tables, broker)

    for _ in range(2):  # the command keeps failing, sweep after sweep
        with pytest.raises(aio_pika.exceptions.DeliveryError):
            await relay.publish_pending()

    # The event went out once, and only its row is gone.
    received = await drain(events, expect=2, timeout=1.0)
    assert [m.message_id for m in received] == [str(event.message_id)]
    assert await outbox_count(engine, clean_tables) == 1


class RecordingHandler:
    """Writes one effect row per handled message; can be told to fail N times."""

    def __init__(self, failures: int = 0) -> None:
        self.calls = 0
        self.failures = failures

    async def __call__(self, message: inventory_msgs.ReleaseStock, uow: UnitOfWork) -> None:
        self.calls += 1
        async with uow:
            await uow.connection.execute(effects.insert().values(note=message.order_id))
            if self.calls <= self.failures:
                raise RuntimeError(f"boom #{self.calls}")
            await uow.commit()


StartConsumer = Callable[..., Awaitable[tuple[MessageConsumer, str]]]


@pytest.fixture
async def start_consumer(
    broker: Broker, engine: AsyncEngine, clean_tables: MessagingTables
) -> AsyncIterator[StartConsumer]:
    """Starts a consumer of ReleaseStock on a queue of its own with `handler`; returns
    it and its queue. Whatever the test does, every one is stopped afterwards."""
    started: list[MessageConsumer] = []

    async def start(
        handler: Any, prefetch_count: int = 4, linger: float = 0.0
    ) -> tuple[MessageConsumer, str]:
        queue = f"test.{uuid.uuid4().hex[:8]}"
        consumer = MessageConsumer(
            broker,
            queue,
            {inventory_msgs.ReleaseStock: handler},
            UnitOfWorkFactory(UnitOfWork, engine, clean_tables),
            retry_delays=(0.1, 0.2),
            prefetch_count=prefetch_count,
            linger=linger,
        )
        started.append(consumer)
        await consumer.start()
        return consumer, queue

    yield start
    for consumer in started:
        await consumer.stop()


async def dead_letter_count(broker: Broker, queue: str) -> int:
    channel = await broker.channel()
    try:
        dead = await channel.declare_queue(dead_letter_queue_name(queue), passive=True)
        return int(dead.declaration_result.message_count or 0)
    finally:
        await channel.close()


async def send_to_queue(broker: Broker, queue: str, body: bytes, message_id: str) -> None:
    channel = await broker.channel()
    await channel.default_exchange.publish(
        aio_pika.Message(body, message_id=message_id, content_type="application/json"),
        routing_key=queue,
    )
    await channel.close()


async def test_a_message_delivered_twice_is_handled_once(
    engine: AsyncEngine,
    clean_tables: MessagingTables,
    broker: Broker,
    start_consumer: StartConsumer,
) -> None:
    handler = RecordingHandler()
    consumer, queue = await start_consumer(handler)
    envelope = Envelope.wrap(inventory_msgs.ReleaseStock(order_id="o-1", reason="test"))
    duplicates = metrics.MESSAGES_CONSUMED.labels(envelope.type, "duplicate")
    duplicates_before = duplicates._value.get()
    for _ in range(3):
        await send_to_queue(
            broker, queue, envelope.model_dump_json().encode(), str(envelope.message_id)
        )
    await eventually(
        lambda: asyncio.sleep(0, duplicates._value.get() - duplicates_before),
        lambda seen: seen == 2,
        5,
        "two deliveries recognised as duplicates",
    )
    await consumer.stop()
    assert await effect_count(engine) == 1


async def test_a_handler_that_fails_once_succeeds_on_the_retry(
    engine: AsyncEngine,
    clean_tables: MessagingTables,
    broker: Broker,
    start_consumer: StartConsumer,
) -> None:
    handler = RecordingHandler(failures=1)
    consumer, queue = await start_consumer(handler)
    envelope = Envelope.wrap(inventory_msgs.ReleaseStock(order_id="o-2", reason="test"))
    await send_to_queue(
        broker, queue, envelope.model_dump_json().encode(), str(envelope.message_id)
    )
    await eventually(lambda: effect_count(engine), lambda n: n == 1, 5, "the retried effect")
    await consumer.stop()
    assert handler.calls == 2


async def test_a_message_that_keeps_failing_is_dead_lettered_with_its_error(
    engine: AsyncEngine,
    clean_tables: MessagingTables,
    broker: Broker,
    start_consumer: StartConsumer,
) -> None:
    handler = RecordingHandler(failures=99)
    consumer, queue = await start_consumer(handler)
    envelope = Envelope.wrap(inventory_msgs.ReleaseStock(order_id="o-3", reason="test"))
    await send_to_queue(
        broker, queue, envelope.model_dump_json().encode(), str(envelope.message_id)
    )
    channel = await broker.channel()
    dead = await channel.declare_queue(dead_letter_queue_name(queue), durable=True)
    letters = await drain(dead, expect=1, timeout=5.0)
    await consumer.stop()
    assert handler.calls == 3  # the first try and two retries
    assert len(letters) == 1
    assert letters[0].message_id == str(envelope.message_id)
    assert letters[0].headers[ATTEMPT_HEADER] == 3
    assert "boom #3" in str(letters[0].headers[ERROR_HEADER])
    assert await effect_count(engine) == 0


async def test_an_unparseable_message_is_dead_lettered_at_once_and_does_not_block_others(
    engine: AsyncEngine,
    clean_tables: MessagingTables,
    broker: Broker,
    start_consumer: StartConsumer,
) -> None:
    handler = RecordingHandler()
    consumer, queue = await start_consumer(handler)
    await send_to_queue(broker, queue, b"{not json", "poison-1")
    envelope = Envelope.wrap(inventory_msgs.ReleaseStock(order_id="o-4", reason="test"))
    await send_to_queue(
        broker, queue, envelope.model_dump_json().encode(), str(envelope.message_id)
    )
    channel = await broker.channel()
    dead = await channel.declare_queue(dead_letter_queue_name(queue), durable=True)
    letters = await drain(dead, expect=1)
    await eventually(lambda: effect_count(engine), lambda n: n == 1, 5, "the good message")
    await consumer.stop()
    assert [m.message_id for m in letters] == ["poison-1"]
    assert "unparseable" in str(letters[0].headers[ERROR_HEADER])
    assert handler.calls == 1


def deadletters(amqp_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oms_runtime.deadletters", "--amqp-url", amqp_url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_ops_can_list_inspect_and_replay_a_dead_letter(
    engine: AsyncEngine,
    clean_tables: MessagingTables,
    broker: Broker,
    plumbing_amqp_url: str,
    start_consumer: StartConsumer,
) -> None:
    handler = RecordingHandler(failures=3)  # fails until the "fix" is deployed
    consumer, queue = await start_consumer(handler)
    envelope = Envelope.wrap(inventory_msgs.ReleaseStock(order_id="o-5", reason="test"))
    await send_to_queue(
        broker, queue, envelope.model_dump_json().encode(), str(envelope.message_id)
    )
    await eventually(
        lambda: dead_letter_count(broker, queue), lambda n: n == 1, 5, "the dead letter"
    )
    assert handler.calls == 3

    listed = await asyncio.to_thread(deadletters, plumbing_amqp_url, "list", queue)
    assert listed.returncode == 0, listed.stderr
    [entry] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert entry["message_id"] == str(envelope.message_id)
    assert "boom #3" in entry["error"]
    shown = await asyncio.to_thread(
        deadletters, plumbing_amqp_url, "show", queue, str(envelope.message_id)
    )
    assert json.loads(shown.stdout)["body"]["data"]["order_id"] == "o-5"

    replayed = await asyncio.to_thread(
        deadletters, plumbing_amqp_url, "replay", queue, str(envelope.message_id)
    )
    assert replayed.returncode == 0, replayed.stderr
    await eventually(lambda: effect_count(engine), lambda n: n == 1, 5, "the replayed message")
    await consumer.stop()
    assert handler.calls == 4
    empty = await asyncio.to_thread(deadletters, plumbing_amqp_url, "list", queue)
    assert empty.stdout == ""


class GatedHandler:
    """Holds the first message it gets until `release` is set, so the ones sent
    meanwhile pile up and reach the consumer together. Fails the first N calls, or
    returns without committing, for the order ids it is told."""

    def __init__(
        self, failures: dict[str, int] | None = None, no_commit: set[str] | None = None
    ) -> None:
        self.first_started = asyncio.Event()
        self.release = asyncio.Event()
        self.calls: Counter[str] = Counter()
        self.failures = failures or {}
        self.no_commit = no_commit or set()

    async def __call__(self, message: inventory_msgs.ReleaseStock, uow: UnitOfWork) -> None:
        self.calls[message.order_id] += 1
        if not self.first_started.is_set():
            self.first_started.set()
            await self.release.wait()
        async with uow:
            await uow.connection.execute(effects.insert().values(note=message.order_id))
            uow.publish(completed(message.order_id))
            if self.calls[message.order_id] <= self.failures.get(message.order_id, 0):
                raise RuntimeError(f"boom {message.order_id}")
            if message.order_id in self.no_commit:
                return
            await uow.commit()


async def send_release(broker: Broker, queue: str, order_id: str) -> Envelope:
    envelope = Envelope.wrap(inventory_msgs.ReleaseStock(order_id=order_id, reason="test"))
    await send_to_queue(
        broker, queue, envelope.model_dump_json().encode(), str(envelope.message_id)
    )
    return envelope


async def effects_by_transaction(engine: AsyncEngine) -> dict[str, list[str]]:
    """Effect notes grouped by the transaction that wrote them (Postgres' xmin)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(literal_column("xmin::text"), effects.c.note).order_by(effects.c.id)
        )
        grouped: dict[str, list[str]] = {}
        for xmin, note in rows:
            grouped.setdefault(xmin, []).append(note)
        return grouped


async def run_gated(
    start_consumer: StartConsumer,
    broker: Broker,
    engine: AsyncEngine,
    handler: GatedHandler,
    order_ids: list[str],
    expected_effects: int,
) -> MessageConsumer:
    """Sends "first", then `order_ids` while the consumer is busy with it, then lets
    it go on, and waits until `expected_effects` effects exist and nothing is in hand."""
    consumer, queue = await start_consumer(handler, prefetch_count=32)
    await send_release(broker, queue, "first")
    await asyncio.wait_for(handler.first_started.wait(), 5)
    for order_id in order_ids:
        await send_release(broker, queue, order_id)
    await eventually(
        lambda: asyncio.sleep(0, consumer.in_flight),
        lambda n: n == len(order_ids) + 1,
        5,
        "every message delivered",
    )
    handler.release.set()
    await eventually(lambda: effect_count(engine), lambda n: n == expected_effects, 5, "effects")
    await eventually(
        lambda: asyncio.sleep(0, consumer.in_flight), lambda n: n == 0, 5, "all settled"
    )
    return consumer


async def test_messages_that_arrive_together_are_handled_in_one_transaction(
    engine: AsyncEngine,
    clean_tables: MessagingTables,
    broker: Broker,
    start_consumer: StartConsumer,
) -> None:
    handler = GatedHandler()
    later = [f"o-{n}" for n in range(5)]
    consumer = await run_gated(start_consumer, broker, engine, handler, later, expected_effects=6)
    await consumer.stop()
    assert list((await effects_by_transaction(engine)).values()) == [["first"], later]
    assert await outbox_count(engine, clean_tables) == 6
    assert all(handler.calls[order_id] == 1 for order_id in later)


# The second message is sent this long after the first: longer than the first takes to
# be handled alone here, shorter than the linger of the case that waits for it.
SECOND_AFTER = 0.3


@pytest.mark.parametrize(
    ("linger", "transactions"),
    [(0.0, [["first"], ["second"]]), (1.0, [["first", "second"]])],
    ids=["no-linger", "linger"],
)
async def test_a_message_that_arrives_alone_waits_the_linger_for_company(
    engine: AsyncEngine,
    clean_tables: MessagingTables,
    broker: Broker,
    start_consumer: StartConsumer,
    linger: float,
    transactions: list[list[str]],
) -> None:
    handler = RecordingHandler()
    consumer, queue = await start_consumer(handler, linger=linger)
    await send_release(broker, queue, "first")
    await asyncio.sleep(SECOND_AFTER)  # the scenario: a second message a moment later
    await send_release(broker, queue, "second")
    await eventually(lambda: effect_count(engine), lambda n: n == 2, 10, "both handled")
    await consumer.stop()
    assert list((await effects_by_transaction(engine)).values()) == transactions


async def test_a_failure_in_a_batch_loses_nothing_and_retries_only_the_failed_message(
    engine: AsyncEngine,
    clean_tables: MessagingTables,
    broker: Broker,
    start_consumer: StartConsumer,
) -> None:
    handler = GatedHandler(failures={"o-2": 2})
    later = [f"o-{n}" for n in range(5)]
    consumer = await run_gated(start_consumer, broker, engine, handler, later, expected_effects=6)
    await consumer.stop()
    by_transaction = await effects_by_transaction(engine)
    # The batch was rolled back and each message handled on its own; o-2 on its retry.
    assert sorted(note for notes in by_transaction.values() for note in notes) == sorted(
        ["first", *later]
    )
    assert all(len(notes) == 1 for notes in by_transaction.values())
    assert handler.calls["o-2"] == 3  # in the batch, alone (fails), on the retry
    assert await outbox_count(engine, clean_tables) == 6


async def test_a_handler_that_does_not_commit_in_a_batch_keeps_nothing_and_the_rest_is_kept(
    engine: AsyncEngine,
    clean_tables: MessagingTables,
    broker: Broker,
    start_consumer: StartConsumer,
) -> None:
    handler = GatedHandler(no_commit={"o-1"})
    later = [f"o-{n}" for n in range(4)]
    consumer = await run_gated(start_consumer, broker, engine, handler, later, expected_effects=4)
    await consumer.stop()
    notes = [note for notes in (await effects_by_transaction(engine)).values() for note in notes]
    assert sorted(notes) == ["first", "o-0", "o-2", "o-3"]
    assert await outbox_count(engine, clean_tables) == 4


async def test_copies_of_a_message_in_one_batch_are_handled_once(
    engine: AsyncEngine,
    clean_tables: MessagingTables,
    broker: Broker,
    start_consumer: StartConsumer,
) -> None:
    handler = GatedHandler()
    consumer, queue = await start_consumer(handler, prefetch_count=32)
    await send_release(broker, queue, "first")
    await asyncio.wait_for(handler.first_started.wait(), 5)
    copied = Envelope.wrap(inventory_msgs.ReleaseStock(order_id="copied", reason="test"))
    body = copied.model_dump_json().encode()
    for _ in range(3):
        await send_to_queue(broker, queue, body, str(copied.message_id))
    await send_release(broker, queue, "other")
    await eventually(
        lambda: asyncio.sleep(0, consumer.in_flight), lambda n: n == 5, 5, "every copy delivered"
    )
    handler.release.set()
    await eventually(
        lambda: asyncio.sleep(0, consumer.in_flight), lambda n: n == 0, 5, "all settled"
    )
    await consumer.stop()
    assert list((await effects_by_transaction(engine)).values()) == [["first"], ["copied", "other"]]
    assert handler.calls["copied"] == 1


async def test_after_commit_callbacks_run_only_once_the_work_is_committed(
    engine: AsyncEngine, clean_tables: MessagingTables
) -> None:
    ran: list[str] = []
    async with UnitOfWork(engine, clean_tables) as uow:
        uow.after_commit(lambda: ran.append("alone"))
        await uow.commit()
    with pytest.raises(RuntimeError):
        async with UnitOfWork(engine, clean_tables) as uow:
            uow.after_commit(lambda: ran.append("rolled back"))
            raise RuntimeError("the state change failed")
    assert ran == ["alone"]

    factory = UnitOfWorkFactory(UnitOfWork, engine, clean_tables)
    first, second = (
        Envelope.wrap(inventory_msgs.ReleaseStock(order_id=order_id, reason="test"))
        for order_id in ("o-1", "o-2")
    )
    async with factory.shared_transaction() as shared:
        assert await shared.claim([first, second]) == {first.message_id, second.message_id}
        for envelope in (first, second):
            async with factory.for_message(envelope, shared) as uow:
                uow.after_commit(lambda order_id=envelope.data["order_id"]: ran.append(order_id))
                await uow.commit()
        assert ran == ["alone"]  # the messages' commits only joined the shared one
        await shared.commit()
    assert ran == ["alone", "o-1", "o-2"]

    async with factory.shared_transaction() as shared:
        # Claimed before: nothing is fresh, and nothing of a rolled-back lot runs.
        assert await shared.claim([first]) == set()
        async with factory.for_message(first, shared) as uow:
            uow.after_commit(lambda: ran.append("never"))
            await uow.commit()
    assert ran == ["alone", "o-1", "o-2"]


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[OutboxRelay]:
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        await relay.stop()
        await asyncio.wait_for(task, 10)


async def test_handed_over_messages_are_published_at_once_and_their_rows_deleted(
    engine: AsyncEngine, clean_tables: MessagingTables, broker: Broker
) -> None:
    queue = await subscriber(broker, "order.completed")
    # No sweep will run during the test: only the hand-over can publish.
    relay = OutboxRelay(engine, clean_tables, broker, listen_dsn=None, poll_interval=60, grace=60)
    factory = handing_over_to(relay, engine, clean_tables)
    async with running(relay):
        async with factory() as uow:
            envelope = uow.publish(completed("handed over"))
            await uow.commit()
        received = await drain(queue, expect=1, timeout=5)
        assert [m.message_id for m in received] == [str(envelope.message_id)]
        await eventually(
            lambda: outbox_count(engine, clean_tables), lambda n: n == 0, 5, "the row deleted"
        )


def without_sweeps(
    engine: AsyncEngine, tables: MessagingTables, broker: Broker, delete_delay: float
) -> OutboxRelay:
    """A relay whose timed sweep never comes during a test: only hand-overs publish."""
    return OutboxRelay(
        engine,
        tables,
        broker,
        listen_dsn=None,
        poll_interval=60,
        grace=60,
        delete_delay=delete_delay,
    )


async def test_rows_of_confirmed_hand_overs_are_deleted_together_after_the_delete_delay(
    engine: AsyncEngine, clean_tables: MessagingTables, broker: Broker
) -> None:
    queue = await subscriber(broker, "order.completed")
    relay = without_sweeps(engine, clean_tables, broker, delete_delay=5.0)
    factory = handing_over_to(relay, engine, clean_tables)
    async with running(relay):
        for n in range(3):
            async with factory() as uow:
                uow.publish(completed(f"together {n}"))
                await uow.commit()
        received = await drain(queue, expect=3, timeout=5)
        assert len(received) == 3
        # Published, their rows not deleted yet: one delete for the three, later.
        assert await outbox_count(engine, clean_tables) == 3
        await eventually(
            lambda: outbox_count(engine, clean_tables), lambda n: n == 0, 10, "the rows deleted"
        )


async def test_a_stopping_relay_deletes_what_it_published_and_never_sends_it_twice(
    engine: AsyncEngine, clean_tables: MessagingTables, broker: Broker
) -> None:
    queue = await subscriber(broker, "order.completed")
    relay = without_sweeps(engine, clean_tables, broker, delete_delay=60.0)
    factory = handing_over_to(relay, engine, clean_tables)
    async with running(relay):
        async with factory() as uow:
            envelope = uow.publish(completed("published before the stop"))
            await uow.commit()
        received = await drain(queue, expect=1, timeout=5)
        assert [m.message_id for m in received] == [str(envelope.message_id)]
    # Stopping sweeps every row at once (age 0); had the published row still been
    # there, it would have gone out again, and the broker confirms before stop returns.
    assert await outbox_count(engine, clean_tables) == 0
    assert await queue.get(fail=False) is None


async def test_a_hand_over_that_could_not_be_published_is_retried_without_waiting_for_the_sweep(
    engine: AsyncEngine,
    clean_tables: MessagingTables,
    broker: Broker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="oms_runtime.messaging.relay")
    # No sweep will run during the test (long poll interval and grace): only the
    # relay's retry of its own failed hand-over can publish the command.
    relay = OutboxRelay(engine, clean_tables, broker, listen_dsn=None, poll_interval=60, grace=60)
    factory = handing_over_to(relay, engine, clean_tables)
    command = inventory_msgs.CommitStock(order_id=f"o-{uuid.uuid4()}")
    async with running(relay):
        # Nobody can receive the command yet: the broker returns it, the publish fails
        # (as it does while the broker is down or a channel is being restored).
        async with factory() as uow:
            envelope = uow.publish(command)
            await uow.commit()
        await eventually(
            lambda: asyncio.sleep(0, [r for r in caplog.records if r.msg == HAND_OVER_FAILED]),
            bool,
            5,
            "the hand-over to fail",
        )
        assert await outbox_count(engine, clean_tables) == 1

        queue = await command_queue(broker, "inventory.commit_stock")
        received = await drain(queue, expect=1, timeout=5)
        assert [m.message_id for m in received] == [str(envelope.message_id)]
        await eventually(
            lambda: outbox_count(engine, clean_tables), lambda n: n == 0, 5, "the row deleted"
        )


HAND_OVER_FAILED = "publishing handed-over messages failed; retrying them"


async def test_rows_nobody_handed_over_are_swept_once_the_grace_period_is_over(
    engine: AsyncEngine, clean_tables: MessagingTables, broker: Broker
) -> None:
    queue = await subscriber(broker, "order.completed")
    grace = 1.5
    relay = OutboxRelay(
        engine, clean_tables, broker, listen_dsn=None, poll_interval=0.2, grace=grace
    )
    async with running(relay):
        # As if written by a process that died before publishing. Its creation time is
        # taken by Postgres after this (the same clock).
        written = time.time()
        async with UnitOfWork(engine, clean_tables) as uow:
            envelope = uow.publish(completed("left behind"))
            await uow.commit()
        received = await drain(queue, expect=1, timeout=10)
        arrived = time.time()
        assert [m.message_id for m in received] == [str(envelope.message_id)]
    # Sweeps came every 0.2 s, but left the row alone while it was young: a live
    # process may have been publishing it.
    assert arrived - written >= grace
    assert await outbox_count(engine, clean_tables) == 0


async def test_a_writer_without_a_relay_wakes_a_standalone_relay_with_notify(
    engine: AsyncEngine, clean_tables: MessagingTables, broker: Broker, migrated_database: str
) -> None:
    queue = await subscriber(broker, "order.completed")
    # Written before the relay listens, by a writer that does not notify: only the
    # sweep of everything a relay makes once it listens can publish it (the timed
    # sweeps leave rows younger than a minute alone).
    async with UnitOfWork(engine, clean_tables) as uow:
        earlier = uow.publish(completed("written before anyone listened"))
        await uow.commit()
    relay = OutboxRelay(
        engine,
        clean_tables,
        broker,
        listen_dsn=libpq_url(migrated_database),
        poll_interval=60,
        grace=60,
    )
    factory = UnitOfWorkFactory(UnitOfWork, engine, clean_tables)
    factory.delivery.notify_channel = clean_tables.notify_channel
    async with running(relay):
        listening = await drain(queue, expect=1, timeout=10)
        assert [m.message_id for m in listening] == [str(earlier.message_id)]
        # Listening, and done with what it found: this one only NOTIFY can announce.
        async with factory() as uow:
            envelope = uow.publish(completed("announced"))
            await uow.commit()
        received = await drain(queue, expect=1, timeout=5)
        assert [m.message_id for m in received] == [str(envelope.message_id)]


# The consumer after the broker dropped it. The consumer takes its deliveries straight
# from aiormq (oms_runtime.messaging.delivery), below aio-pika's robust queue; these
# check that aio-pika still brings it back whichever way it was dropped.


@pytest.fixture
def amqp_proxy(plumbing_amqp_url: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy.in_front_of(plumbing_amqp_url, name="amqp").start()
    yield proxy
    proxy.close()


async def consumers_on(plumbing_amqp_url: str, queue: str) -> int | None:
    """How many consumers `queue` has, or None while there is no such queue."""
    connection = await aio_pika.connect(plumbing_amqp_url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.consumer_count or 0)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return None
    finally:
        await connection.close()


async def handled_notes(engine: AsyncEngine) -> list[str]:
    return [note for notes in (await effects_by_transaction(engine)).values() for note in notes]


async def test_a_consumer_cut_off_from_the_broker_takes_messages_again_once_it_is_back(
    engine: AsyncEngine,
    clean_tables: MessagingTables,
    broker: Broker,
    amqp_proxy: FaultProxy,
    plumbing_amqp_url: str,
) -> None:
    proxied = Broker(
        amqp_proxy.rewrite(plumbing_amqp_url) + "?reconnect_interval=0.2", "plumbing-proxied"
    )
    await proxied.connect()
    queue = f"test.{uuid.uuid4().hex[:8]}"
    consumer = MessageConsumer(
        proxied,
        queue,
        {inventory_msgs.ReleaseStock: RecordingHandler()},
        UnitOfWorkFactory(UnitOfWork, engine, clean_tables),
        retry_delays=(0.1, 0.2),
        prefetch_count=4,
    )
    await consumer.start()
    try:
        await send_release(broker, queue, "before")
        await eventually(lambda: effect_count(engine), lambda n: n == 1, 5, "handled before")

        amqp_proxy.cut()
        await eventually(
            lambda: asyncio.sleep(0, proxied.is_connected), lambda up: not up, 5, "cut noticed"
        )
        await send_release(broker, queue, "while cut off")  # waits in the durable queue
        amqp_proxy.restore()
        await eventually(lambda: effect_count(engine), lambda n: n == 2, 20, "handled on return")
        await send_release(broker, queue, "after")
        await eventually(lambda: effect_count(engine), lambda n: n == 3, 5, "handled after")

        assert await handled_notes(engine) == ["before", "while cut off", "after"]
        assert await consumers_on(plumbing_amqp_url, queue) == 1, "restored once, not twice"
    finally:
        await consumer.stop()
        await proxied.close()


async def test_a_consumer_whose_queue_was_deleted_consumes_it_again_once_it_is_declared_anew(
    engine: AsyncEngine,
    clean_tables: MessagingTables,
    broker: Broker,
    start_consumer: StartConsumer,
    plumbing_amqp_url: str,
) -> None:
    _, queue = await start_consumer(RecordingHandler())
    await send_release(broker, queue, "before")
    await eventually(lambda: effect_count(engine), lambda n: n == 1, 5, "handled before")

    # The broker cancels the consumer of a deleted queue; aio-pika's recovery declares
    # the queue again, with its bindings, and consumes from it.
    connection = await aio_pika.connect(plumbing_amqp_url)
    await (await connection.channel()).queue_delete(queue)
    await connection.close()
    await eventually(
        lambda: consumers_on(plumbing_amqp_url, queue), lambda n: n == 1, 20, "consuming again"
    )
    await send_release(broker, queue, "after")
    await eventually(lambda: effect_count(engine), lambda n: n == 2, 5, "handled after")
    assert await handled_notes(engine) == ["before", "after"]
