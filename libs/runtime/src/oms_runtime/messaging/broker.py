"""The RabbitMQ connection of a service, its exchanges and a confirming publisher."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import aio_pika
import aiormq
import aiormq.abc
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractRobustConnection,
    DeliveryMode,
)
from pamqp.commands import Basic

from oms_contracts import COMMANDS_EXCHANGE, EVENTS_EXCHANGE

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    pass


@dataclass(frozen=True)
class OutgoingMessage:
    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    message_type: str
    correlation_id: str | None = None
    headers: dict[str, Any] | None = None
    mandatory: bool = False


class Broker:
    """Owns one robust connection; aio-pika restores channels and consumers after
    a reconnect, so callers only wait for the first connection."""

    def __init__(self, url: str, connection_name: str) -> None:
        self._url = url
        self._name = connection_name
        self._connection: AbstractRobustConnection | None = None
        self._connected = asyncio.Event()
        self._publisher: Publisher | None = None
        # A plain (not restored on reconnect) channel that only answers pings.
        self._probe: aiormq.abc.AbstractChannel | None = None

    @property
    def is_connected(self) -> bool:
        # A robust connection stays "open" while it reconnects; `connected` says
        # whether it has a live link right now.
        connection = self._connection
        return connection is not None and connection.connected.is_set()

    async def ping(self, timeout: float = 2.0) -> bool:
        """Whether the broker answers now. A connection behind a network partition
        still looks open (until heartbeats give up on it); only an answer tells."""
        connection = self._connection
        if connection is None or not connection.connected.is_set():
            return False
        try:
            async with asyncio.timeout(timeout):
                probe = self._probe
                if probe is None or probe.is_closed:
                    transport = connection.transport
                    if transport is None:
                        return False
                    probe = self._probe = await transport.connection.channel()
                await probe.basic_qos(prefetch_count=0)
            return True
        except Exception as exc:  # a timeout, a closed channel or connection
            log.debug("broker did not answer a ping", extra={"error": repr(exc)})
            self._probe = None  # a channel whose call was cut short is not reused
            return False

    async def connect(self, retry_delay: float = 1.0, max_delay: float = 15.0) -> None:
        """Connect, retrying for as long as it takes (the service stays up meanwhile)."""
        delay = retry_delay
        while self._connection is None:
            try:
                self._connection = await aio_pika.connect_robust(
                    self._url, client_properties={"connection_name": self._name}
                )
            except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
                log.warning("broker not reachable, retrying", extra={"error": str(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)
        self._connected.set()

    async def wait_connected(self) -> AbstractRobustConnection:
        await self._connected.wait()
        assert self._connection is not None
        return self._connection

    async def channel(self, *, confirms: bool = True) -> AbstractChannel:
        connection = await self.wait_connected()
        return await connection.channel(publisher_confirms=confirms, on_return_raises=True)

    async def publisher(self) -> Publisher:
        if self._publisher is None:
            channel = await self.channel(confirms=True)
            self._publisher = Publisher(channel)
            await self._publisher.declare_exchanges()
        return self._publisher

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
            self._connected.clear()
            self._publisher = None
            self._probe = None


async def declare_exchanges(channel: AbstractChannel) -> dict[str, AbstractExchange]:
    exchanges = {}
    for name in (EVENTS_EXCHANGE, COMMANDS_EXCHANGE):
        exchanges[name] = await channel.declare_exchange(
            name, aio_pika.ExchangeType.TOPIC, durable=True
        )
    return exchanges


class Publisher:
    """Publishes persistent messages and waits for the broker's confirms.

    A batch is published in one go and its confirms awaited together
    (pipelining), so a batch costs about one round trip, not one per message.
    Frames go through aiormq (aio-pika's protocol layer) without waiting for the
    socket to drain after each one: the confirms are what tells the message arrived.
    """

    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = channel

    async def declare_exchanges(self) -> None:
        await declare_exchanges(self._channel)

    async def publish_many(self, messages: Sequence[OutgoingMessage]) -> None:
        """Publish every message; raises the first failure, if any."""
        for outcome in await self.publish_each(messages):
            if outcome is not None:
                raise outcome

    async def publish_each(self, messages: Sequence[OutgoingMessage]) -> list[Exception | None]:
        """Publish every message; per message, None once the broker confirmed it, or
        why it was not (a Nack, a returned mandatory message, a lost channel)."""
        if self._channel.is_closed:
            raise BrokerUnavailable("publisher channel is closed")
        channel = cast(aiormq.Channel, await self._channel.get_underlay_channel())
        # Started in order, so the frames go out in order.
        confirms = [
            asyncio.ensure_future(
                channel.basic_publish(
                    message.body,
                    exchange=message.exchange,
                    routing_key=message.routing_key,
                    properties=Basic.Properties(
                        message_id=message.message_id,
                        message_type=message.message_type,
                        correlation_id=message.correlation_id,
                        content_type="application/json",
                        delivery_mode=DeliveryMode.PERSISTENT.value,
                        headers=message.headers or {},
                    ),
                    mandatory=message.mandatory,
                    wait=False,
                )
            )
            for message in messages
        ]
        try:
            outcomes = await asyncio.gather(*confirms, return_exceptions=True)
        except BaseException:
            for confirm in confirms:
                confirm.cancel()
            raise
        failures: list[Exception | None] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome  # a cancellation, not an answer from the broker
            failures.append(outcome if isinstance(outcome, Exception) else None)
        return failures
