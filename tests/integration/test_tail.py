"""The subscriber example, run as a subscriber would run it: a separate process with
its own queue on the events exchange, against a private vhost."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import aio_pika
import pytest

from oms_contracts import EVENTS_EXCHANGE, Envelope, Message
from oms_contracts.common import OrderLine, ShippingAddress
from oms_contracts.order import OrderCompleted, OrderCreated
from oms_contracts.payment import PaymentAuthorized
from oms_devtools import infra

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tail_amqp_url(test_amqp_url: str) -> Iterator[str]:
    vhost = f"oms_tail_{uuid.uuid4().hex[:8]}"
    infra.create_vhost(vhost)
    yield test_amqp_url.rsplit("/", 1)[0] + f"/{vhost}"
    infra.delete_vhost(vhost)


@pytest.fixture
async def events_exchange(tail_amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractExchange]:
    connection = await aio_pika.connect_robust(tail_amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    yield await channel.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    await connection.close()


async def start_tail(amqp_url: str, *patterns: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oms_devtools.tail",
        *patterns,
        "--amqp-url",
        amqp_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    # It says so once its queue is bound: only then are events routed to it.
    ready = await asyncio.wait_for(process.stderr.readline(), 15)
    assert ready.startswith(b"listening on "), ready
    return process


async def publish(exchange: aio_pika.abc.AbstractExchange, envelope: Envelope) -> None:
    await exchange.publish(
        aio_pika.Message(envelope.model_dump_json().encode(), content_type="application/json"),
        routing_key=envelope.type,
    )


def envelope_of(message: Message, order_id: str) -> Envelope:
    return Envelope.wrap(message, correlation_id=order_id)


async def test_tail_prints_each_matching_event_once_and_nothing_else(
    tail_amqp_url: str, events_exchange: aio_pika.abc.AbstractExchange
) -> None:
    order_id = f"order-{uuid.uuid4().hex[:8]}"
    created = envelope_of(
        OrderCreated(
            order_id=order_id,
            customer_id="alice",
            lines=[OrderLine(sku="MUG", quantity=2)],
            shipping_address=ShippingAddress(
                name="Ada", line1="1 Main St", city="Berlin", postal_code="10115", country="DE"
            ),
            created_at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
        ),
        order_id,
    )
    authorized = envelope_of(
        PaymentAuthorized(order_id=order_id, payment_id="pay-1", amount=2500, currency="EUR"),
        order_id,
    )
    # Events go through one queue in order: once this one is printed, so is all before.
    last = envelope_of(OrderCompleted(order_id=order_id), order_id)

    process = await start_tail(tail_amqp_url, "order.*")
    assert process.stdout is not None
    try:
        await publish(events_exchange, created)
        await publish(events_exchange, authorized)
        await publish(events_exchange, created)  # redelivered: same message_id
        await publish(events_exchange, last)
        lines = [
            (await asyncio.wait_for(process.stdout.readline(), 15)).decode().rstrip("\n")
            for _ in range(2)
        ]
    finally:
        process.send_signal(signal.SIGINT)
        remaining, _ = await asyncio.wait_for(process.communicate(), 15)

    assert remaining == b""
    assert process.returncode == 0
    first, second = lines
    time, routing_key, correlation_id, data = first.split(" ", 3)
    assert abs(datetime.fromisoformat(time) - created.occurred_at) < timedelta(milliseconds=1)
    assert (routing_key, correlation_id) == ("order.created", order_id)
    assert data == json.dumps(created.data, separators=(",", ":"))
    assert second.split(" ")[1:3] == ["order.completed", order_id]
