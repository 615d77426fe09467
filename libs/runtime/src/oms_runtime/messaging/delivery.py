"""Deliveries taken from aiormq as they arrive, under aio-pika's robust queue.

aio-pika hands a consumer each delivery as an `IncomingMessage` (a dozen properties
decoded and copied) started in a task of its own, on top of the task aiormq already
runs per delivery: ~30 µs of a service's CPU per message, ~2 % of an order's (README,
issue 19). The consumer reads eight properties and acknowledges, so `LeanRobustQueue`
registers a callback that wraps aiormq's delivery in `Delivered` instead, and leaves
the rest to aio-pika: the queue records its consumer exactly as `RobustQueue` does,
so after a reconnect aio-pika restores it through this class, and after the broker
cancels it (its queue deleted) aio-pika's recovery re-consumes with the same
callback, which takes aio-pika's own `IncomingMessage` just as well.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, Protocol

import aiormq
from aio_pika import RobustQueue
from aio_pika.abc import ConsumerTag, TimeoutType
from pamqp.common import Arguments


class Incoming(Protocol):
    """What the consumer reads of a delivery: `Delivered` or aio-pika's message."""

    @property
    def body(self) -> bytes: ...
    @property
    def headers(self) -> Mapping[str, Any] | None: ...
    @property
    def delivery_tag(self) -> int | None: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def type(self) -> str | None: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def routing_key(self) -> str | None: ...
    @property
    def exchange(self) -> str | None: ...

    async def ack(self, multiple: bool = False) -> None: ...

    async def nack(self, multiple: bool = False, requeue: bool = True) -> None: ...


class Delivered:
    """One delivery as aiormq read it, acknowledged on the channel it came by (after a
    reconnect that channel is closed, and the broker redelivers what was not acked)."""

    __slots__ = (
        "_channel",
        "body",
        "correlation_id",
        "delivery_tag",
        "exchange",
        "headers",
        "message_id",
        "routing_key",
        "type",
    )

    def __init__(self, message: aiormq.abc.DeliveredMessage) -> None:
        properties = message.header.properties
        self._channel = message.channel
        self.body: bytes = message.body
        self.headers: Mapping[str, Any] | None = properties.headers
        self.delivery_tag: int | None = message.delivery_tag
        self.message_id: str | None = properties.message_id
        self.type: str | None = properties.message_type
        self.correlation_id: str | None = properties.correlation_id
        self.routing_key: str | None = message.routing_key
        self.exchange: str | None = message.exchange

    async def ack(self, multiple: bool = False) -> None:
        await self._channel.basic_ack(self._tag(), multiple=multiple)

    async def nack(self, multiple: bool = False, requeue: bool = True) -> None:
        await self._channel.basic_nack(self._tag(), multiple=multiple, requeue=requeue)

    def _tag(self) -> int:
        if self.delivery_tag is None:  # only a basic.get's "empty" answer has none
            raise ValueError("a delivery without a delivery tag cannot be settled")
        return self.delivery_tag


DeliveryCallback = Callable[[Incoming], Awaitable[None]]


async def _deliver(callback: DeliveryCallback, message: aiormq.abc.DeliveredMessage) -> None:
    await callback(Delivered(message))


class LeanRobustQueue(RobustQueue):
    """A robust queue whose consumers get `Delivered`; set it as the consuming
    channel's `QUEUE_CLASS` before declaring the queue."""

    async def consume(  # type: ignore[override]  # takes any Incoming, not only aio-pika's
        self,
        callback: DeliveryCallback,
        no_ack: bool = False,
        exclusive: bool = False,
        arguments: Arguments = None,
        consumer_tag: ConsumerTag | None = None,
        timeout: TimeoutType = None,
        robust: bool = True,
    ) -> ConsumerTag:
        if no_ack:
            raise ValueError("deliveries are acknowledged by the consumer, never automatically")
        channel = await self.channel.get_underlay_channel()
        result = await channel.basic_consume(
            queue=self.name,
            consumer_callback=partial(_deliver, callback),
            exclusive=exclusive,
            no_ack=False,
            arguments=arguments,
            consumer_tag=consumer_tag,
            timeout=timeout,
        )
        if result.consumer_tag is None:
            raise RuntimeError("the broker named no consumer tag")
        if robust:
            # What aio-pika restores from: its reconnect calls this method again, its
            # recovery after a broker's cancel calls `Queue.consume` with the same.
            self._consumers[result.consumer_tag] = dict(
                callback=callback, no_ack=False, exclusive=exclusive, arguments=arguments
            )
        return result.consumer_tag
