"""The idempotent consumer: one queue per service, one handler per message type.

A message is acknowledged only after its handler's transaction committed (or it was
recognised as a duplicate). A handler that raises is retried after a delay by
parking the message in a delay queue whose TTL dead-letters it back to the work
queue; after the last delay it lands in the service's dead-letter queue with the
error attached, where ops can inspect and replay it. Nothing blocks the queue.

Deliveries go through one worker: whatever has arrived by the time it is free (up to
`batch_size`) is handled in one shared transaction, which saves the per-transaction
round trips (BEGIN, inbox claim, writes, COMMIT) that dominate a small handler's cost.
A message that finds nothing else waiting waits `linger` (a few ms) for company
before it is handled: at a moderate rate that makes batches of several instead of
one each, and the CPU it saves (a transaction, a commit's WAL flush, an ack per
message) cuts the saga's latency on a busy machine more than the wait adds (README,
Benchmarks). Under load batches fill without it. If any message of a batch fails, or
its handler declines to commit, the batch is rolled back and each message is handled
in its own transaction, exactly as if it had come alone (retries and dead-lettering
included).
One worker means handlers must stay short (database work only, no calls to the
outside world: the payment gateway is called by its own worker, not by a handler).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aio_pika.abc import AbstractChannel, AbstractQueue
from pydantic import ValidationError

from oms_contracts import Envelope, Message
from oms_runtime import metrics, tracing
from oms_runtime.capacity import QueueStatistics
from oms_runtime.logging import log_context
from oms_runtime.messaging.broker import Broker, OutgoingMessage
from oms_runtime.messaging.delivery import Incoming, LeanRobustQueue
from oms_runtime.messaging.queues import (
    QueueType,
    QueueTypeMismatch,
    ServiceQueues,
    declare_service_queues,
    retry_queue_name,
)
from oms_runtime.messaging.queues import (  # where the rest of the runtime looks for it
    dead_letter_queue_name as dead_letter_queue_name,
)
from oms_runtime.messaging.unit_of_work import (
    AlreadyHandled,
    NeedsOwnTransaction,
    OutboxDelivery,
    SharedTransaction,
    UnitOfWork,
)

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-oms-attempt"
ERROR_HEADER = "x-oms-error"
# How long stopping waits for the broker to answer a cancel or a close.
CHANNEL_CALL_SECONDS = 5.0

Handler = Callable[[Any, Any], Awaitable[None]]


class UnitOfWorkSource(Protocol):
    """What the consumer needs of a service's `UnitOfWorkFactory`."""

    def for_message(
        self, envelope: Envelope, shared: SharedTransaction | None = None
    ) -> UnitOfWork: ...

    def shared_transaction(self) -> SharedTransaction: ...

    @property
    def delivery(self) -> OutboxDelivery: ...

    async def load_batch(self, shared: SharedTransaction, envelopes: list[Envelope]) -> None: ...


@dataclass
class _Delivery:
    incoming: Incoming
    envelope: Envelope
    message: Message
    handler: Handler


class _PartlyRedelivered(Exception):
    """Some messages of a batch were handled before: each is handled alone."""


_LOCK_NOT_AVAILABLE = "55P03"


def _is_attempt_failure(exc: BaseException) -> bool:
    """Whether a failed shared transaction failed for a reason of the handler's own,
    not for sharing (a lock wait cut short, a handler that needs its own transaction)."""
    if isinstance(exc, NeedsOwnTransaction | _PartlyRedelivered):
        return False
    seen: BaseException | None = exc
    while seen is not None:
        code = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if code == _LOCK_NOT_AVAILABLE:
            return False
        seen = getattr(seen, "orig", None) or seen.__cause__
    return True


def _caller_of(delivery: _Delivery) -> tracing.TraceContext | None:
    """The span that sent the message, from its `traceparent` header."""
    return tracing.parse_traceparent((delivery.incoming.headers or {}).get("traceparent"))


def _logging_about(envelope: Envelope, **more: Any) -> contextlib.AbstractContextManager[None]:
    return log_context(
        correlation_id=envelope.correlation_id,
        message_id=str(envelope.message_id),
        message_type=envelope.type,
        **more,
    )


def attempts_so_far(incoming: Incoming) -> int:
    value = (incoming.headers or {}).get(ATTEMPT_HEADER, 0)
    return value if isinstance(value, int) else 0


class MessageConsumer:
    def __init__(
        self,
        broker: Broker,
        queue: str,
        handlers: Mapping[type[Message], Handler],
        unit_of_work: UnitOfWorkSource,
        *,
        retry_delays: Sequence[float] = (1.0, 5.0, 30.0),
        prefetch_count: int = 32,
        batch_size: int = 16,
        linger: float = 0.0,
        queue_type: QueueType = "classic",
        delivery_limit: int = 20,
    ) -> None:
        self._broker = broker
        self._queue_name = queue
        self._handlers = {cls.routing_key: (cls, handler) for cls, handler in handlers.items()}
        self._unit_of_work = unit_of_work
        self._retry_delays = tuple(retry_delays)
        self.queues = ServiceQueues(queue, self._retry_delays, queue_type, delivery_limit)
        self._prefetch_count = prefetch_count
        self._batch_size = max(1, batch_size)
        self._linger = linger if self._batch_size > 1 else 0.0
        self._arrivals: asyncio.Queue[Incoming] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._in_flight = 0
        self._settled = 0  # deliveries settled since the start (acked, parked or left)
        self._idle = asyncio.Event()
        self._idle.set()
        # Feeds the capacity report (GET /admin/capacity).
        self.statistics = QueueStatistics()

    @property
    def queue_name(self) -> str:
        return self._queue_name

    @property
    def routing_keys(self) -> list[str]:
        """What the work queue is bound to: the messages this service handles."""
        return list(self._handlers)

    @property
    def in_flight(self) -> int:
        """Messages delivered to this consumer and not yet settled."""
        return self._in_flight

    async def start(self) -> None:
        self._channel = await self._broker.channel(confirms=True)
        # Queues declared on this channel (the work queue is the one consumed) hand
        # over aiormq's deliveries without aio-pika's wrapper.
        self._channel.QUEUE_CLASS = LeanRobustQueue
        await self._channel.set_qos(prefetch_count=self._prefetch_count)
        try:
            self._queue = await declare_service_queues(
                self._channel, self.queues, self._handlers.keys()
            )
        except QueueTypeMismatch as exc:
            log.error("cannot consume: %s", exc)
            raise
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name=f"consume {self._queue_name}")
        self._consumer_tag = await self._queue.consume(self._on_message)
        log.info("consuming", extra={"queue": self._queue_name})

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking messages and let the ones in hand finish (or be redelivered)."""
        settled_before = self._settled
        log.info("stopping intake", extra={"in_hand": self._in_flight})
        if self._queue is not None and self._consumer_tag is not None:
            try:
                # Bounded: with the broker gone, a robust channel would wait for it
                # to come back before cancelling, and the process would never stop.
                async with asyncio.timeout(CHANNEL_CALL_SECONDS):
                    await self._queue.cancel(self._consumer_tag)
            except Exception as exc:  # the channel may already be gone
                log.warning("could not cancel the consumer", extra={"error": repr(exc)})
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            log.info(
                "messages in hand finished", extra={"finished": self._settled - settled_before}
            )
        except TimeoutError:
            log.warning(
                "in-flight messages left unacked; the broker will redeliver them",
                extra={"finished": self._settled - settled_before, "returned": self._in_flight},
            )
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self._channel is not None and not self._channel.is_closed:
            try:
                async with asyncio.timeout(CHANNEL_CALL_SECONDS):
                    await self._channel.close()
            except Exception as exc:
                log.warning("could not close the consumer's channel", extra={"error": repr(exc)})

    async def _on_message(self, incoming: Incoming) -> None:
        self._in_flight += 1
        self._idle.clear()
        self._arrivals.put_nowait(incoming)

    async def _work(self) -> None:
        while True:
            batch = [await self._arrivals.get()]
            if self._linger and self._arrivals.empty():
                await asyncio.sleep(self._linger)
            while len(batch) < self._batch_size and not self._arrivals.empty():
                batch.append(self._arrivals.get_nowait())
            started = time.perf_counter()
            try:
                await self._process_batch(batch)
            except Exception:
                # E.g. an ack on a channel that died meanwhile: the broker redelivers
                # what was not acked, and the inbox absorbs what was handled.
                log.exception("could not settle a batch of messages")
            finally:
                self._record_busy(started, len(batch))
                self._in_flight -= len(batch)
                self._settled += len(batch)
                if self._in_flight == 0:
                    self._idle.set()

    def _record_busy(self, started: float, count: int) -> None:
        # The batch's time is split evenly, back to back, so busy time stays the
        # union of the handling intervals.
        share = (time.perf_counter() - started) / count
        for index in range(count):
            self.statistics.record(share, now=time.monotonic() - share * (count - 1 - index))

    async def _process_batch(self, batch: list[Incoming]) -> None:
        deliveries = [
            delivery for delivery in [await self._parse(incoming) for incoming in batch] if delivery
        ]
        if deliveries and not await self._process_together(deliveries):
            await asyncio.gather(*(self._process(delivery) for delivery in deliveries))

    async def _parse(self, incoming: Incoming) -> _Delivery | None:
        try:
            envelope = Envelope.model_validate_json(incoming.body)
            message_cls, handler = self._handlers[envelope.type]
            message: Message = envelope.payload(message_cls)
        except (ValidationError, KeyError, ValueError) as exc:
            # Cannot ever succeed: no point retrying.
            await self._settle(incoming, dead_letter=True, error=f"unparseable: {exc!r}")
            metrics.MESSAGES_CONSUMED.labels(incoming.type or "unknown", "rejected").inc()
            return None
        return _Delivery(incoming, envelope, message, handler)

    @contextlib.contextmanager
    def _handling(self, delivery: _Delivery) -> Iterator[tracing.TraceContext]:
        """The span of one attempt at handling the delivery, and its log context."""
        envelope = delivery.envelope
        parent = _caller_of(delivery)
        with (
            tracing.span(
                f"handle {envelope.type}", parent, message_id=envelope.message_id
            ) as context,
            _logging_about(envelope),
        ):
            yield context

    async def _process_together(self, deliveries: list[_Delivery]) -> bool:
        """Handle the deliveries in one transaction; False if it had to be rolled
        back (nothing of it is kept then, and nothing was acknowledged)."""
        # (delivery, outcome, seconds, the trace its handling was a span of)
        outcomes: list[tuple[_Delivery, str, float, str | None]] = []
        try:
            async with self._unit_of_work.shared_transaction() as shared:
                fresh = await shared.claim([delivery.envelope for delivery in deliveries])
                if fresh is None:
                    raise _PartlyRedelivered()
                await self._unit_of_work.load_batch(
                    shared, [d.envelope for d in deliveries if d.envelope.message_id in fresh]
                )
                for delivery in deliveries:
                    started = time.perf_counter()
                    if delivery.envelope.message_id not in fresh:
                        caller = _caller_of(delivery)
                        trace_id = caller.trace_id if caller is not None else None
                        outcomes.append((delivery, "duplicate", 0.0, trace_id))
                        continue
                    # A second copy within the batch is a duplicate of the first.
                    fresh.discard(delivery.envelope.message_id)
                    with self._handling(delivery) as span:
                        await delivery.handler(
                            delivery.message,
                            self._unit_of_work.for_message(delivery.envelope, shared),
                        )
                    elapsed = time.perf_counter() - started
                    outcomes.append((delivery, "handled", elapsed, span.trace_id))
                await shared.commit()
        except Exception as exc:
            if len(deliveries) == 1 and _is_attempt_failure(exc):
                # Alone, the shared transaction was the message's own: this was an
                # attempt like any other.
                with self._handling(deliveries[0]):
                    await self._failed(deliveries[0], exc)
                return True
            log.info("handling %d messages one by one", len(deliveries), extra={"cause": repr(exc)})
            return False
        for delivery, outcome, elapsed, trace_id in outcomes:
            # Said once committed, in the handling's log context (not a span again).
            with _logging_about(delivery.envelope, trace_id=trace_id):
                self._handled(delivery, outcome, elapsed)
        # One frame acknowledges the batch: every delivery before the last one on
        # this channel is either in it or was settled before (one worker, in order).
        last = max(deliveries, key=lambda delivery: delivery.incoming.delivery_tag or 0)
        await last.incoming.ack(multiple=True)
        return True

    def _handled(self, delivery: _Delivery, outcome: str, elapsed: float) -> None:
        message_type = delivery.envelope.type
        metrics.MESSAGE_HANDLING_SECONDS.labels(message_type).observe(elapsed)
        metrics.MESSAGES_CONSUMED.labels(message_type, outcome).inc()
        log.info("%s %s", outcome, message_type, extra={"duration_ms": round(elapsed * 1000, 2)})

    async def _process(self, delivery: _Delivery) -> None:
        """Handle one delivery in its own transaction."""
        incoming, envelope = delivery.incoming, delivery.envelope
        with self._handling(delivery):
            started = time.perf_counter()
            try:
                await delivery.handler(delivery.message, self._unit_of_work.for_message(envelope))
                outcome = "handled"
            except AlreadyHandled:
                outcome = "duplicate"
            except Exception as exc:
                await self._failed(delivery, exc)
                return
            self._handled(delivery, outcome, time.perf_counter() - started)
            await incoming.ack()

    async def _failed(self, delivery: _Delivery, exc: Exception) -> None:
        """After a failed attempt: retry later, or dead-letter after the last one."""
        attempt = attempts_so_far(delivery.incoming)
        last_attempt = attempt >= len(self._retry_delays)
        log.error(
            "handler failed",
            exc_info=exc,
            extra={"attempt": attempt + 1, "dead_lettered": last_attempt},
        )
        await self._settle(
            delivery.incoming,
            dead_letter=last_attempt,
            retry_delay=None if last_attempt else self._retry_delays[attempt],
            error="".join(traceback.format_exception_only(exc)).strip(),
        )
        metrics.MESSAGES_CONSUMED.labels(
            delivery.envelope.type, "dead_lettered" if last_attempt else "retried"
        ).inc()

    async def _settle(
        self,
        incoming: Incoming,
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
