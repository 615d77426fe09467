"""The live event feed: each browser watching gets its own exclusive queue bound to
every routing key of `oms.events` (the public subscriber interface, as in
oms_devtools.tail), streamed as Server-Sent Events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from oms_contracts import EVENTS_EXCHANGE

log = logging.getLogger("oms.console.feed")

HEARTBEAT_SECONDS = 15.0
# A stream ends after this long; the browser's EventSource reconnects by itself.
# That also lets the console stop promptly (open streams do not hold it up for long).
STREAM_SECONDS = 300.0


class FeedFull(Exception):
    pass


class EventFeed:
    def __init__(self, amqp_url: str, max_watchers: int = 50, backlog: int = 500) -> None:
        self._url = amqp_url
        self._connection: AbstractRobustConnection | None = None
        self._lock = asyncio.Lock()
        self._watchers = 0
        self._max_watchers = max_watchers
        self._backlog = backlog

    async def _connected(self) -> AbstractRobustConnection:
        async with self._lock:
            if self._connection is None or self._connection.is_closed:
                self._connection = await aio_pika.connect_robust(
                    self._url, client_properties={"connection_name": "console-feed"}, timeout=5
                )
            return self._connection

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def stream(self, patterns: list[str]) -> AsyncIterator[str]:
        """SSE lines: one `data:` per event (the envelope as JSON), comments as
        heartbeats, until STREAM_SECONDS have passed."""
        if self._watchers >= self._max_watchers:
            raise FeedFull()
        self._watchers += 1
        try:
            connection = await self._connected()
            channel = await connection.channel()
            events: asyncio.Queue[bytes] = asyncio.Queue(maxsize=self._backlog)
            dropped = 0

            async def on_message(message: AbstractIncomingMessage) -> None:
                nonlocal dropped
                try:
                    events.put_nowait(message.body)
                except asyncio.QueueFull:  # a slow browser loses events, not the console
                    dropped += 1

            try:
                exchange = await channel.declare_exchange(
                    EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
                )
                queue = await channel.declare_queue(exclusive=True, auto_delete=True)
                for pattern in patterns:
                    await queue.bind(exchange, routing_key=pattern)
                await queue.consume(on_message, no_ack=True)
                # Only now is every event heard: the browser says "connected" on this,
                # not when the response starts (before the queue was bound).
                yield "event: ready\ndata: listening\n\n"
                deadline = asyncio.get_running_loop().time() + STREAM_SECONDS
                while asyncio.get_running_loop().time() < deadline:
                    try:
                        body = await asyncio.wait_for(events.get(), HEARTBEAT_SECONDS)
                    except TimeoutError:
                        yield ": heartbeat\n\n"
                        continue
                    yield f"event: oms\ndata: {_one_line(body)}\n\n"
                    if dropped:
                        yield f"event: dropped\ndata: {dropped}\n\n"
                        dropped = 0
            finally:
                with contextlib.suppress(Exception):
                    await channel.close()
        finally:
            self._watchers -= 1


def _one_line(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return json.dumps({"unparseable": body[:500].decode("utf-8", errors="replace")})
