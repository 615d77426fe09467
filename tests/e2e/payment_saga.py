"""Driving the payment service over AMQP as the order saga does, without the order
service: the orders are unknown to it, and it ignores their replies."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika

from oms_contracts import COMMANDS_EXCHANGE, Envelope
from oms_contracts import payment as msgs
from oms_devtools.client import OmsClient

from .helpers import EventRecorder


class Saga:
    """Sends payment commands for one order, as the order service would, and reads
    what payment answers on the events exchange."""

    def __init__(
        self, channel: aio_pika.abc.AbstractChannel, events: EventRecorder, oms: OmsClient
    ) -> None:
        self.order_id = f"parcels-{uuid.uuid4().hex[:12]}"
        self._channel = channel
        self._events = events
        self._oms = oms

    @classmethod
    @asynccontextmanager
    async def connected(
        cls, amqp_url: str, events: EventRecorder, oms: OmsClient
    ) -> AsyncIterator[Saga]:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            yield cls(await connection.channel(), events, oms)

    def parcel(self, location: str) -> str:
        return f"{self.order_id}:{location}"

    def envelope(self, command: msgs.Command) -> Envelope:
        return Envelope.wrap(command, correlation_id=self.order_id)

    async def send(self, command: msgs.Command) -> None:
        """Send the command (a new message, as a re-sent command is)."""
        await self.publish(self.envelope(command))

    async def publish(self, envelope: Envelope) -> None:
        """Publish this very message (again: a redelivery, same message id)."""
        exchange = await self._channel.get_exchange(COMMANDS_EXCHANGE)
        await exchange.publish(
            aio_pika.Message(
                envelope.model_dump_json().encode(),
                message_id=str(envelope.message_id),
                correlation_id=self.order_id,
            ),
            routing_key=envelope.type,
        )

    async def answer(self, routing_key: str, count: int = 1, **fields: Any) -> list[dict[str, Any]]:
        """The `count` first `routing_key` events about this order matching `fields`."""

        def matches(data: dict[str, Any]) -> bool:
            return data["order_id"] == self.order_id and all(
                data.get(name) == value for name, value in fields.items()
            )

        found = await self._events.wait_for(routing_key, matches, count=count, timeout=20)
        return found[:count]

    async def authorized(self, amount: int, token: str = "tok_ok") -> dict[str, Any]:
        await self.send(
            msgs.AuthorizePayment(
                order_id=self.order_id, amount=amount, currency="EUR", payment_token=token
            )
        )
        [authorized] = await self.answer("payment.authorized")
        return authorized

    async def capture(self, amount: int | None, location: str) -> None:
        await self.send(
            msgs.CapturePayment(
                order_id=self.order_id, amount=amount, fulfillment_id=self.parcel(location)
            )
        )

    async def captured(self, amount: int, location: str) -> dict[str, Any]:
        await self.capture(amount, location)
        [captured] = await self.answer("payment.captured", fulfillment_id=self.parcel(location))
        return captured

    async def payment(self) -> dict[str, Any]:
        payment = await self._oms.payment_of(self.order_id)
        assert payment is not None
        return payment
