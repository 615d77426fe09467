"""The fault-injecting proxy in front of the real Postgres and RabbitMQ: what the
services' drivers see when a test cuts, partitions or restores their server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import aio_pika
import asyncpg
import pytest

from oms_devtools.faultproxy import FaultProxy
from oms_runtime.db import libpq_url

pytestmark = pytest.mark.integration


@pytest.fixture
def database_proxy(migrated_database: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy.in_front_of(migrated_database, name="pg").start()
    yield proxy
    proxy.close()


@pytest.fixture
def broker_proxy(test_amqp_url: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy.in_front_of(test_amqp_url, name="amqp").start()
    yield proxy
    proxy.close()


async def test_postgres_through_a_cut_fails_fast_and_works_again_once_restored(
    database_proxy: FaultProxy, migrated_database: str
) -> None:
    url = database_proxy.rewrite(libpq_url(migrated_database))
    connection = await asyncpg.connect(url)
    assert await connection.fetchval("SELECT 1") == 1

    database_proxy.cut()
    started = time.monotonic()
    with pytest.raises((ConnectionError, asyncpg.exceptions.ConnectionDoesNotExistError)):
        await connection.fetchval("SELECT 1", timeout=10)
    with pytest.raises((ConnectionError, OSError, asyncpg.exceptions.PostgresError)):
        await asyncpg.connect(url, timeout=10)
    assert time.monotonic() - started < 5, "a dead server is noticed at once, not by a timeout"

    database_proxy.restore()
    again = await asyncpg.connect(url)
    assert await again.fetchval("SELECT 2") == 2
    await again.close()


async def test_postgres_behind_a_partition_hangs_until_it_heals(
    database_proxy: FaultProxy, migrated_database: str
) -> None:
    connection = await asyncpg.connect(database_proxy.rewrite(libpq_url(migrated_database)))
    database_proxy.blackhole()
    query = asyncio.ensure_future(connection.fetchval("SELECT 42"))
    done, _ = await asyncio.wait([query], timeout=1.0)
    assert not done, "nothing answers through a partition, and nothing is closed"
    assert not connection.is_closed()

    database_proxy.restore()
    assert await asyncio.wait_for(query, 5) == 42
    await connection.close()


async def test_rabbitmq_through_a_cut_drops_the_connection_and_a_robust_one_comes_back(
    broker_proxy: FaultProxy, test_amqp_url: str
) -> None:
    connection = await aio_pika.connect_robust(
        broker_proxy.rewrite(test_amqp_url), reconnect_interval=0.2
    )
    channel = await connection.channel()
    # Named and durable: an exclusive queue would go with the connection.
    queue = await channel.declare_queue(f"proxy-test-{uuid.uuid4().hex[:8]}", durable=True)

    broker_proxy.cut()
    deadline = time.monotonic() + 5
    while connection.connected.is_set():
        assert time.monotonic() < deadline, "the client never noticed the cut"
        await asyncio.sleep(0.05)

    broker_proxy.restore()
    # The channel is reopened a moment after the connection: publish until it takes.
    deadline = time.monotonic() + 10
    while True:
        try:
            await channel.default_exchange.publish(
                aio_pika.Message(b"after"), routing_key=queue.name
            )
            break
        except (aio_pika.exceptions.AMQPError, RuntimeError):  # e.g. channel closed
            assert time.monotonic() < deadline, "the channel never came back"
            await asyncio.sleep(0.1)
    message = await queue.get(timeout=5, fail=False)
    while message is None:
        assert time.monotonic() < deadline, "the restored channel got nothing"
        await asyncio.sleep(0.05)
        message = await queue.get(timeout=5, fail=False)
    assert message.body == b"after"
    await queue.delete(if_unused=False, if_empty=False)
    await connection.close()
