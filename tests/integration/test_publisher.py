"""The publisher every relay goes through, against real RabbitMQ: a batch goes out as
one write, and each message still gets its own answer from the broker."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import aio_pika
import pytest

from oms_contracts import COMMANDS_EXCHANGE, EVENTS_EXCHANGE
from oms_runtime.messaging.broker import Broker, OutgoingMessage, Publisher

pytestmark = pytest.mark.integration


def event(routing_key: str = "test.published", body: bytes | None = None) -> OutgoingMessage:
    message_id = str(uuid.uuid4())
    return OutgoingMessage(
        exchange=EVENTS_EXCHANGE,
        routing_key=routing_key,
        body=body if body is not None else f'{{"id": "{message_id}"}}'.encode(),
        message_id=message_id,
        message_type=routing_key,
        correlation_id=f"corr-{message_id}",
        headers={"traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"},
    )


def unroutable_command() -> OutgoingMessage:
    """A command no queue is bound to: mandatory, so the broker returns it."""
    message_id = str(uuid.uuid4())
    return OutgoingMessage(
        exchange=COMMANDS_EXCHANGE,
        routing_key=f"nobody.listens.{uuid.uuid4().hex[:8]}",
        body=b"{}",
        message_id=message_id,
        message_type="nobody.listens",
        mandatory=True,
    )


async def events_queue(broker: Broker) -> aio_pika.abc.AbstractQueue:
    channel = await broker.channel()
    exchange = await channel.declare_exchange(
        EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, "test.#")
    return queue


async def received(
    queue: aio_pika.abc.AbstractQueue,
    expect: int,
    timeout: float = 10.0,
    *,
    only_from: Publisher | None = None,
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """The first `expect` messages of `queue`. With `only_from`, also that no more came:
    a marker published through it after everything the test published arrives next."""
    async with asyncio.timeout(timeout):
        messages = [await next_message(queue) for _ in range(expect)]
        if only_from is not None:
            marker = event()
            await only_from.publish_many([marker])
            following = await next_message(queue)
            assert following.message_id == marker.message_id, "more messages than published"
    return messages


async def next_message(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    while True:
        message = await queue.get(fail=False, no_ack=True)
        if message is not None:
            return message
        await asyncio.sleep(0.02)  # the caller's deadline bounds the wait


@pytest.fixture
async def publisher(broker: Broker) -> Publisher:
    return await broker.publisher()


async def test_a_batch_arrives_whole_in_order_with_every_property_and_body_intact(
    broker: Broker, publisher: Publisher
) -> None:
    queue = await events_queue(broker)
    # One body larger than a frame (the broker's frame_max is 128 KiB), split in three.
    batch = [event() for _ in range(40)] + [event(body=bytes(range(256)) * 1200)] + [event()]

    assert await publisher.publish_each(batch) == [None] * len(batch)

    arrived = await received(queue, expect=len(batch), only_from=publisher)
    assert [m.message_id for m in arrived] == [m.message_id for m in batch]
    for sent, got in zip(batch, arrived, strict=True):
        assert got.body == sent.body
        assert got.type == sent.message_type
        assert got.correlation_id == sent.correlation_id
        assert got.headers == sent.headers
        assert got.content_type == "application/json"
        assert got.delivery_mode == aio_pika.DeliveryMode.PERSISTENT


async def test_each_message_of_a_batch_gets_its_own_answer(
    broker: Broker, publisher: Publisher
) -> None:
    queue = await events_queue(broker)
    batch = [event(), unroutable_command(), event(), event(), unroutable_command(), event()]

    outcomes = await publisher.publish_each(batch)

    assert [outcome is None for outcome in outcomes] == [True, False, True, True, False, True]
    for outcome in (outcomes[1], outcomes[4]):
        assert isinstance(outcome, aio_pika.exceptions.DeliveryError)
    delivered = [m for m in batch if not m.mandatory]
    assert [m.message_id for m in await received(queue, expect=4, only_from=publisher)] == [
        m.message_id for m in delivered
    ]
    with pytest.raises(aio_pika.exceptions.DeliveryError):
        await publisher.publish_many([event(), unroutable_command()])


async def test_batches_published_at_once_do_not_interleave_or_mix_up_their_answers(
    broker: Broker, publisher: Publisher
) -> None:
    queue = await events_queue(broker)
    batches = [
        [event(), event(), unroutable_command(), event()]
        if index % 3 == 0
        else [event() for _ in range(5)]
        for index in range(12)
    ]

    answers = await asyncio.gather(*(publisher.publish_each(batch) for batch in batches))

    for batch, outcomes in zip(batches, answers, strict=True):
        assert [outcome is None for outcome in outcomes] == [not m.mandatory for m in batch]
    routable = sum(not m.mandatory for batch in batches for m in batch)
    arrived = [m.message_id for m in await received(queue, expect=routable, only_from=publisher)]
    # Each batch's messages arrive together and in their order.
    for batch in batches:
        ids = [m.message_id for m in batch if not m.mandatory]
        start = arrived.index(ids[0])
        assert arrived[start : start + len(ids)] == ids


async def test_a_batch_abandoned_while_waiting_leaves_later_answers_right(
    broker: Broker, publisher: Publisher
) -> None:
    queue = await events_queue(broker)
    abandoned = [event() for _ in range(20)]
    # The channel's delivery tags only grow: the batch's were handed out once its
    # write is queued. (Private in the test only: "sent" shows nowhere else.)
    channel = await publisher._channel.get_underlay_channel()
    sent_from = channel.delivery_tag + len(abandoned)
    waiting = asyncio.create_task(publisher.publish_each(abandoned))
    async with asyncio.timeout(5):
        # aiormq's counter has no event to wait on: yield until the tags are out.
        while channel.delivery_tag < sent_from:  # noqa: ASYNC110
            await asyncio.sleep(0)  # sent, not yet confirmed, once this ends
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting

    later = [event(), unroutable_command(), event()]
    outcomes = await publisher.publish_each(later)

    assert [outcome is None for outcome in outcomes] == [True, False, True]
    # The abandoned batch was already on its way: it arrives, before the later one.
    arrived = [m.message_id for m in await received(queue, expect=22, only_from=publisher)]
    assert arrived == [m.message_id for m in abandoned] + [later[0].message_id, later[2].message_id]


async def test_a_channel_the_broker_closes_fails_the_batch_and_the_next_one_goes_out(
    broker: Broker, publisher: Publisher
) -> None:
    queue = await events_queue(broker)
    missing_exchange = OutgoingMessage(
        exchange=f"no.such.exchange.{uuid.uuid4().hex[:8]}",
        routing_key="test.lost",
        body=b"{}",
        message_id=str(uuid.uuid4()),
        message_type="test.lost",
    )

    # Publishing to an exchange that does not exist makes the broker close the channel.
    outcomes = await publisher.publish_each([event(), missing_exchange, event()])

    assert outcomes[1] is not None and outcomes[2] is not None
    # The robust channel reopens; the publisher goes on with fresh delivery tags.
    after: list[Exception | None] = []
    async with asyncio.timeout(15):
        while True:
            try:
                batch = [event(), unroutable_command(), event()]
                after = await publisher.publish_each(batch)
                break
            except Exception:  # the channel is still reopening
                await asyncio.sleep(0.1)
    assert [outcome is None for outcome in after] == [True, False, True]
    # The first message of the failed batch may have been routed before the channel
    # closed and its confirm lost with it (the relay then publishes it again, and the
    # consumers' inboxes absorb the copy): what arrives ends with the later batch.
    arrived = [m.message_id for m in await received(queue, expect=2)]
    if arrived[0] != batch[0].message_id:
        arrived += [m.message_id for m in await received(queue, expect=1, only_from=publisher)]
    assert arrived[-2:] == [batch[0].message_id, batch[2].message_id]


async def test_messages_without_an_id_are_given_one_and_still_get_their_own_answers(
    broker: Broker, publisher: Publisher
) -> None:
    queue = await events_queue(broker)
    anonymous = replace(event(), message_id="")
    batch = [
        replace(unroutable_command(), message_id=""),
        anonymous,
        replace(unroutable_command(), message_id=""),
    ]

    outcomes = await publisher.publish_each(batch)

    assert [outcome is None for outcome in outcomes] == [False, True, False]
    (arrived,) = await received(queue, expect=1, only_from=publisher)
    assert arrived.body == anonymous.body
    assert arrived.message_id
