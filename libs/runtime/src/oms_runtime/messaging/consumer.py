"""The idempotent consumer: one queue per service, one handler per message type.

A message is acknowledged only after its handler's transaction committed (or it was
recognised as a duplicate). A handler that raises is retried after a delay by
parking the message in a delay queue whose TTL dead-letters it back to the work
queue; after the last delay it lands in the service's dead-letter queue with the
error attached, where ops can inspect and replay it. Nothing blocks the queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError

from oms_contracts import CATALOG, Envelope, Message
from oms_runtime import metrics, tracing
from oms_runtime.capacity import QueueStatistics
from oms_runtime.logging import log_context
from oms_runtime.messaging.broker import Broker, OutgoingMessage, declare_exchanges
from oms_runtime.messaging.unit_of_work import AlreadyHandled, UnitOfWork

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-oms-attempt"
ERROR_HEADER = "x-oms-error"

Handler = Callable[[Any, Any], Awaitable[None]]
UnitOfWorkFactory = Callable[[Envelope], UnitOfWork]


def attempts_so_far(incoming: AbstractIncomingMessage) -> int:
    value = (incoming.headers or {}).get(ATTEMPT_HEADER, 0)
    return value if isinstance(value, int) else 0


def retry_queue_name(queue: str, delay: float) -> str:
    return f"{queue}.retry.{round(delay * 1000)}ms"


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}.dead"


class MessageConsumer:
    def __init__(
        self,
        broker: Broker,
        queue: str,
        handlers: Mapping[type[Message], Handler],
        unit_of_work: UnitOfWorkFactory,
        *,
        retry_delays: Sequence[float] = (1.0, 5.0, 30.0),
        prefetch_count: int = 32,
    ) -> None:
        self._broker = broker
        self._queue_name = queue
        self._handlers = {cls.routing_key: (cls, handler) for cls, handler in handlers.items()}
        self._unit_of_work = unit_of_work
        self._retry_delays = tuple(retry_delays)
        self._prefetch_count = prefetch_count
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # Feeds the capacity report (GET /admin/capacity).
        self.statistics = QueueStatistics()

    @property
    def queue_name(self) -> str:
        return self._queue_name

    @property
    def in_flight(self) -> int:
        """Messages delivered to this consumer and not yet settled."""
        return self._in_flight

    async def start(self) -> None:
        self._channel = await self._broker.channel(confirms=True)
        await self._channel.set_qos(prefetch_count=self._prefetch_count)
        self._queue = await declare_service_queue(
            self._channel, self._queue_name, self._handlers.keys(), self._retry_delays
        )
        self._consumer_tag = await self._queue.consume(self._on_message)
        log.info("consuming", extra={"queue": self._queue_name})

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking messages and let the ones in hand finish (or be redelivered)."""
        if self._queue is not None and self._consumer_tag is not None:
            try:
                await self._queue.cancel(self._consumer_tag)
            except Exception as exc:  # the channel may already be gone
                log.debug("cancel failed", extra={"error": repr(exc)})
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("in-flight messages left unacked; the broker will redeliver them")
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _on_message(self, incoming: AbstractIncomingMessage) -> None:
        self._in_flight += 1
        self._idle.clear()
        started = time.perf_counter()
        try:
            await self._process(incoming)
        finally:
            self.statistics.record(time.perf_counter() - started)
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _process(self, incoming: AbstractIncomingMessage) -> None:
        attempt = attempts_so_far(incoming)
        try:
            envelope = Envelope.model_validate_json(incoming.body)
            message_cls, handler = self._handlers[envelope.type]
            message: Message = envelope.payload(message_cls)
        except (ValidationError, KeyError, ValueError) as exc:
            # Cannot ever succeed: no point retrying.
            await self._settle(incoming, dead_letter=True, error=f"unparseable: {exc!r}")
            metrics.MESSAGES_CONSUMED.labels(incoming.type or "unknown", "rejected").inc()
            return

        parent = tracing.parse_traceparent((incoming.headers or {}).get("traceparent"))
        with (
            tracing.span(f"handle {envelope.type}", parent, message_id=envelope.message_id),
            log_context(
                correlation_id=envelope.correlation_id,
                message_id=str(envelope.message_id),
                message_type=envelope.type,
            ),
        ):
            started = time.perf_counter()
            try:
                await handler(message, self._unit_of_work(envelope))
                outcome = "handled"
            except AlreadyHandled:
                outcome = "duplicate"
            except Exception as exc:
                last_attempt = attempt >= len(self._retry_delays)
                log.exception(
                    "handler failed",
                    extra={"attempt": attempt + 1, "dead_lettered": last_attempt},
                )
                await self._settle(
                    incoming,
                    dead_letter=last_attempt,
                    retry_delay=None if last_attempt else self._retry_delays[attempt],
                    error="".join(traceback.format_exception_only(exc)).strip(),
                )
                metrics.MESSAGES_CONSUMED.labels(
                    envelope.type, "dead_lettered" if last_attempt else "retried"
                ).inc()
                return
            elapsed = time.perf_counter() - started
            metrics.MESSAGE_HANDLING_SECONDS.labels(envelope.type).observe(elapsed)
            metrics.MESSAGES_CONSUMED.labels(envelope.type, outcome).inc()
            await incoming.ack()
            log.info(
                "%s %s", outcome, envelope.type, extra={"duration_ms": round(elapsed * 1000, 2)}
            )

    async def _settle(
        self,
        incoming: AbstractIncomingMessage,
        *,
        dead_letter: bool,
        error: str,
        retry_delay: float | None = None,
    ) -> None:
        """Move a failed message to a delay queue or the dead-letter queue, then ack.

        Publishing first and acking second means a crash in between duplicates the
        message rather than losing it; the inbox absorbs the duplicate.
        """
        attempt = attempts_so_far(incoming)
        target = (
            dead_letter_queue_name(self._queue_name)
            if dead_letter or retry_delay is None
            else retry_queue_name(self._queue_name, retry_delay)
        )
        headers = dict(incoming.headers or {})
        headers[ATTEMPT_HEADER] = attempt + 1
        headers[ERROR_HEADER] = error[:2000]
        headers.setdefault("x-oms-original-routing-key", incoming.routing_key or "")
        headers.setdefault("x-oms-original-exchange", incoming.exchange or "")
        try:
            publisher = await self._broker.publisher()
            await publisher.publish_many(
                [
                    OutgoingMessage(
                        exchange="",
                        routing_key=target,
                        body=incoming.body,
                        message_id=incoming.message_id or "",
                        message_type=incoming.type or "",
                        correlation_id=incoming.correlation_id,
                        headers=headers,
                    )
                ]
            )
        except Exception as exc:
            log.warning("could not park failed message; requeueing", extra={"error": repr(exc)})
            await asyncio.sleep(1.0)
            await incoming.nack(requeue=True)
            return
        await incoming.ack()


async def declare_service_queue(
    channel: AbstractChannel,
    queue_name: str,
    routing_keys: Any,
    retry_delays: Sequence[float],
) -> AbstractQueue:
    """Declare the service's work queue, its delay queues and dead-letter queue."""
    exchanges = await declare_exchanges(channel)
    queue = await channel.declare_queue(queue_name, durable=True)
    for routing_key in routing_keys:
        exchange = exchanges[CATALOG[routing_key].exchange]
        await queue.bind(exchange, routing_key=routing_key)
    for delay in retry_delays:
        await channel.declare_queue(
            retry_queue_name(queue_name, delay),
            durable=True,
            arguments={
                "x-message-ttl": round(delay * 1000),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": queue_name,
            },
        )
    await channel.declare_queue(dead_letter_queue_name(queue_name), durable=True)
    return queue
