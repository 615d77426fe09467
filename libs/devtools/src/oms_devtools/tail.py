"""Print the events of the order management system as they happen.

A small, complete subscriber, and the example to copy when another system wants
OMS events: it binds its own queue to the `oms.events` topic exchange with the
routing-key patterns it cares about, reads the JSON envelope, skips duplicates by
`message_id` (delivery is at least once), and acknowledges only once it has handled
the event.

    python -m oms_devtools.tail 'order.*'                    # every order event
    python -m oms_devtools.tail 'order.*' 'payment.#'        # several patterns
    python -m oms_devtools.tail '#' --queue analytics.oms    # durable: keeps events while away

Without --queue the queue is exclusive and vanishes when the process stops; with
--queue NAME it is durable, so events published while the subscriber is down wait
for it. Schemas: libs/contracts/catalog/ or GET /events/asyncapi.json on the order
service.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import OrderedDict

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from oms_contracts import EVENTS_EXCHANGE, Envelope

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


class RecentIds:
    """The last `capacity` message ids, so memory stays bounded in a long tail."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def add(self, message_id: str) -> bool:
        """Remember `message_id`; False if it was already seen."""
        if message_id in self._ids:
            return False
        self._ids[message_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True


def format_event(envelope: Envelope) -> str:
    data = json.dumps(envelope.data, separators=(",", ":"), ensure_ascii=False)
    time = envelope.occurred_at.isoformat(timespec="milliseconds")
    return f"{time} {envelope.type} {envelope.correlation_id or '-'} {data}"


async def tail(amqp_url: str, patterns: list[str], queue_name: str | None) -> None:
    seen = RecentIds()

    async def on_message(message: AbstractIncomingMessage) -> None:
        try:
            envelope = Envelope.model_validate_json(message.body)
        except ValidationError:
            print(f"skipped, not an envelope: {message.body[:200]!r}", file=sys.stderr)
        else:
            if seen.add(str(envelope.message_id)):
                print(format_event(envelope), flush=True)
        await message.ack()

    connection = await aio_pika.connect_robust(
        amqp_url, client_properties={"connection_name": "oms-tail"}
    )
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=100)
        # Declaring is idempotent and lets the tail start before the services do.
        exchange = await channel.declare_exchange(
            EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        if queue_name:
            queue = await channel.declare_queue(queue_name, durable=True)
        else:
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for pattern in patterns:
            await queue.bind(exchange, routing_key=pattern)
        await queue.consume(on_message)
        print(f"listening on {queue.name} for {' '.join(patterns)}", file=sys.stderr, flush=True)

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m oms_devtools.tail",
        description="Print OMS events: one line each with time, routing key, "
        "correlation id (the order) and data as compact JSON.",
    )
    parser.add_argument(
        "patterns",
        nargs="+",
        metavar="PATTERN",
        help="routing-key pattern to bind: '*' is one word, '#' any number (order.*, #)",
    )
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("OMS_AMQP_URL", DEFAULT_AMQP_URL),
        help=f"RabbitMQ URL (default: $OMS_AMQP_URL, else {DEFAULT_AMQP_URL})",
    )
    parser.add_argument(
        "--queue",
        metavar="NAME",
        help="durable queue that keeps events while the tail is not running",
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail(args.amqp_url, args.patterns, args.queue))


if __name__ == "__main__":
    main()
