"""Classic and quorum queues on the real RabbitMQ: what quorum declares, what it
does with a message over its delivery limit or past its delay, the clear refusal of
a queue of the other type, and the migration between the two."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractConnection

from oms_contracts import COMMANDS_EXCHANGE, EVENTS_EXCHANGE
from oms_runtime.messaging.queues import (
    QueueTypeMismatch,
    ServiceQueues,
    ServiceStillConsuming,
    declare_service_queues,
    migrate,
)

pytestmark = pytest.mark.integration

# A command and an event, so bindings on both exchanges are moved.
ROUTING_KEYS = ["inventory.restock", "order.created"]


@pytest.fixture
async def connection(plumbing_amqp_url: str) -> AsyncIterator[AbstractConnection]:
    connection = await aio_pika.connect(plumbing_amqp_url)
    yield connection
    await connection.close()


@pytest.fixture
async def queues_to_clean(connection: AbstractConnection) -> AsyncIterator[list[str]]:
    names: list[str] = []
    yield names
    channel = await connection.channel()
    for name in names:
        for suffix in ("", ".migrating"):
            await channel.queue_delete(name + suffix)
    await channel.close()


def service_queues(
    names: list[str], queue_type: str, delays: tuple[float, ...] = (30.0,), limit: int = 20
) -> ServiceQueues:
    queues = ServiceQueues(
        f"qt-{uuid.uuid4().hex[:8]}",
        delays,
        queue_type,
        limit,  # type: ignore[arg-type]
    )
    names.extend(name for name, _ in queues.declarations())
    return queues


async def accepts(connection: AbstractConnection, name: str, arguments: dict[str, Any]) -> bool:
    """Whether re-declaring queue `name` with `arguments` is accepted: the broker
    refuses a declaration whose type or dead-lettering differ from the queue's."""
    channel = await connection.channel()
    try:
        await channel.declare_queue(name, durable=True, arguments=arguments)
    except aio_pika.exceptions.ChannelPreconditionFailed:
        return False
    await channel.close()
    return True


async def is_quorum(connection: AbstractConnection, queues: ServiceQueues, name: str) -> bool:
    as_quorum = dict(
        ServiceQueues(
            queues.work, queues.retry_delays, "quorum", queues.delivery_limit
        ).declarations()
    )
    as_classic = dict(ServiceQueues(queues.work, queues.retry_delays, "classic").declarations())
    quorum = await accepts(connection, name, as_quorum[name])
    classic = await accepts(connection, name, as_classic[name])
    assert quorum != classic, f"{name} is neither"
    return quorum


async def drain(channel: AbstractChannel, name: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    queue = await channel.declare_queue(name, passive=True)
    found = []
    while (message := await queue.get(no_ack=True, fail=False, timeout=5)) is not None:
        found.append(message)
    return found


async def publish(
    channel: AbstractChannel, exchange: str, key: str, body: bytes, **extra: Any
) -> None:
    target = channel.default_exchange if exchange == "" else await channel.get_exchange(exchange)
    await target.publish(aio_pika.Message(body, message_id=body.decode(), **extra), routing_key=key)


async def eventually_in(channel: AbstractChannel, name: str, timeout: float = 10) -> bytes:
    queue = await channel.declare_queue(name, passive=True)
    deadline = time.monotonic() + timeout
    while (message := await queue.get(no_ack=True, fail=False, timeout=5)) is None:
        assert time.monotonic() < deadline, f"nothing arrived in {name}"
        await asyncio.sleep(0.05)
    return message.body


async def test_quorum_queues_move_delayed_messages_back_and_give_up_after_the_limit(
    connection: AbstractConnection, queues_to_clean: list[str]
) -> None:
    queues = service_queues(queues_to_clean, "quorum", delays=(0.2,), limit=2)
    channel = await connection.channel(publisher_confirms=True)
    work = await declare_service_queues(channel, queues, ROUTING_KEYS)
    for name, _ in queues.declarations():
        assert await is_quorum(connection, queues, name), name

    # A parked message comes back to the work queue once its delay is over.
    await publish(channel, "", queues.retry(0.2), b"retried")
    assert await eventually_in(channel, queues.work) == b"retried"

    # A message handed back over and over (its consumer dying each time) ends with
    # the dead letters once the delivery limit is reached.
    await publish(channel, COMMANDS_EXCHANGE, "inventory.restock", b"poison")
    deadline = time.monotonic() + 10
    while True:
        message = await work.get(no_ack=False, fail=False, timeout=5)
        if message is None:
            break
        assert time.monotonic() < deadline
        await message.nack(requeue=True)
    assert await eventually_in(channel, queues.dead) == b"poison"
    await channel.close()


async def test_a_quorum_service_refuses_classic_queues_and_says_how_to_migrate(
    connection: AbstractConnection, queues_to_clean: list[str]
) -> None:
    classic = service_queues(queues_to_clean, "classic")
    channel = await connection.channel()
    await declare_service_queues(channel, classic, ROUTING_KEYS)
    quorum = ServiceQueues(classic.work, classic.retry_delays, "quorum")
    with pytest.raises(QueueTypeMismatch, match="migrate-queues"):
        await declare_service_queues(await connection.channel(), quorum, ROUTING_KEYS)


@pytest.mark.parametrize(("before", "after"), [("classic", "quorum"), ("quorum", "classic")])
async def test_migrating_a_services_queues_keeps_every_message_and_binding(
    connection: AbstractConnection, queues_to_clean: list[str], before: str, after: str
) -> None:
    old = service_queues(queues_to_clean, before)
    channel = await connection.channel(publisher_confirms=True)
    await declare_service_queues(channel, old, ROUTING_KEYS)
    await publish(channel, COMMANDS_EXCHANGE, "inventory.restock", b"work-1", headers={"x-a": 1})
    await publish(channel, EVENTS_EXCHANGE, "order.created", b"work-2")
    await publish(channel, "", old.retry(30.0), b"parked", headers={"x-oms-attempt": 1})
    await publish(channel, "", old.dead, b"dead-1", correlation_id="order-1")

    new = ServiceQueues(old.work, old.retry_delays, after)  # type: ignore[arg-type]
    moved = await migrate(connection, new, ROUTING_KEYS)
    assert moved == {old.retry(30.0): 1, old.work: 3, old.dead: 1}
    for name, _ in new.declarations():
        assert await is_quorum(connection, new, name) is (after == "quorum"), name

    # Everything is where it belongs, properties and headers kept; the parked
    # message is due at once.
    work = {m.body: m for m in await drain(channel, new.work)}
    assert set(work) == {b"work-1", b"work-2", b"parked"}
    assert work[b"work-1"].headers["x-a"] == 1
    assert work[b"work-1"].message_id == "work-1"
    assert work[b"parked"].headers["x-oms-attempt"] == 1
    [dead] = await drain(channel, new.dead)
    assert (dead.body, dead.correlation_id) == (b"dead-1", "order-1")
    # The bindings came along; the holding queues are gone.
    await publish(channel, EVENTS_EXCHANGE, "order.created", b"after")
    assert await eventually_in(channel, new.work) == b"after"
    for name in (f"{new.work}.migrating", f"{new.dead}.migrating"):
        checking = await connection.channel()
        with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
            await checking.declare_queue(name, passive=True)

    # Once there, nothing more to do.
    assert await migrate(connection, new, ROUTING_KEYS) == {}
    await channel.close()


async def test_migrating_is_refused_while_the_service_consumes(
    connection: AbstractConnection, queues_to_clean: list[str]
) -> None:
    old = service_queues(queues_to_clean, "classic")
    channel = await connection.channel()
    work = await declare_service_queues(channel, old, ROUTING_KEYS)
    await work.consume(lambda message: asyncio.sleep(0))
    new = ServiceQueues(old.work, old.retry_delays, "quorum")
    with pytest.raises(ServiceStillConsuming):
        await migrate(connection, new, ROUTING_KEYS)
    await channel.close()
    assert not await is_quorum(connection, old, old.work)


async def test_the_migrate_queues_command_moves_a_services_queues_to_the_configured_type(
    connection: AbstractConnection, plumbing_amqp_url: str, queues_to_clean: list[str]
) -> None:
    env = {**os.environ, "OMS_AMQP_URL": plumbing_amqp_url, "OMS_LOG_FORMAT": "json"}

    def command(queue_type: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "oms_inventory", "migrate-queues"],
            env={**env, "OMS_QUEUE_TYPE": queue_type},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )

    classic = ServiceQueues("oms.inventory", (1.0, 5.0, 30.0), "classic")
    queues_to_clean.extend(name for name, _ in classic.declarations())
    assert "classic already" in command("classic").stdout
    moved = command("quorum").stdout
    assert "oms.inventory: now quorum" in moved
    quorum = ServiceQueues("oms.inventory", (1.0, 5.0, 30.0), "quorum")
    for name, _ in quorum.declarations():
        assert await is_quorum(connection, quorum, name), name
    assert "quorum already" in command("quorum").stdout
