"""The background side of a service process: broker, consumer, outbox relay, workers.

Started and stopped by the FastAPI lifespan (the composition root); nothing here
connects at import time. The HTTP API keeps answering while the broker is away:
connecting happens in the background and `/readyz` reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from oms_contracts import Message
from oms_runtime import metrics
from oms_runtime.capacity import QueueReport, queue_report
from oms_runtime.messaging.broker import Broker
from oms_runtime.messaging.consumer import (
    Handler,
    MessageConsumer,
    UnitOfWorkSource,
    dead_letter_queue_name,
)
from oms_runtime.messaging.relay import OutboxRelay
from oms_runtime.messaging.tables import MessagingTables
from oms_runtime.settings import ServiceSettings

log = logging.getLogger(__name__)


class BackgroundWorker(Protocol):
    """A loop a service runs next to its consumer (e.g. a gateway worker, a sweeper)."""

    async def run(self) -> None: ...

    async def stop(self) -> None: ...


class PeriodicWorker:
    """A `BackgroundWorker` that works in rounds: every `interval` seconds, or at
    once again while work is left. A round that fails (the database is away) is
    logged and the next one comes as usual, so the loop outlives any outage."""

    # What the log calls the work ("deadline sweep failed").
    name = "periodic work"

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._stopped = asyncio.Event()

    async def work(self) -> bool:
        """One round; True if more is waiting already."""
        raise NotImplementedError

    async def run(self) -> None:
        while not self._stopped.is_set():
            try:
                more = await self.work()
            except Exception as exc:
                log.warning("%s failed", self.name, extra={"error": repr(exc)})
                more = False
            if not more:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), self._interval)

    async def stop(self) -> None:
        self._stopped.set()


# Sets service-specific gauges from the database when /metrics is scraped.
GaugeCollector = Callable[[AsyncEngine], Awaitable[None]]


class ServiceRuntime:
    def __init__(
        self,
        *,
        name: str,
        settings: ServiceSettings,
        engine: AsyncEngine,
        tables: MessagingTables,
        queue: str,
        handlers: Mapping[type[Message], Handler],
        unit_of_work: UnitOfWorkSource,
        workers: Sequence[BackgroundWorker] = (),
        gauge_collectors: Sequence[GaugeCollector] = (),
    ) -> None:
        self.name = name
        self.settings = settings
        self.engine = engine
        self.broker = Broker(settings.amqp_url, connection_name=name)
        self._run_relay = settings.relay_enabled
        # With a relay in this process, committed messages are handed straight to
        # it (it needs no LISTEN); otherwise their commit NOTIFYs the standalone
        # relays, and this one only reports the outbox lag.
        self.relay = OutboxRelay(
            engine,
            tables,
            self.broker,
            listen_dsn=None,
            batch_size=settings.relay_batch_size,
            poll_interval=settings.relay_poll_interval,
            grace=settings.relay_grace_seconds,
        )
        if self._run_relay:
            unit_of_work.delivery.hand_over = self.relay.hand_over
        else:
            unit_of_work.delivery.notify_channel = tables.notify_channel
        self.consumer = MessageConsumer(
            self.broker,
            queue,
            handlers,
            unit_of_work,
            retry_delays=settings.retry_delays,
            prefetch_count=settings.prefetch_count,
            batch_size=settings.consumer_batch_size,
            linger=settings.consumer_linger_ms / 1000,
            queue_type=settings.queue_type,
            delivery_limit=settings.queue_delivery_limit,
        )
        self._workers = list(workers)
        self._gauge_collectors = list(gauge_collectors)
        self._tasks: list[asyncio.Task[Any]] = []
        self._consumer_started = False

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._start_consuming(), name="consumer"))
        if self._run_relay:
            self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        for worker in self._workers:
            self._tasks.append(asyncio.create_task(worker.run(), name=type(worker).__name__))

    async def _start_consuming(self) -> None:
        await self.broker.connect()
        while True:
            try:
                await self.consumer.start()
                break
            except Exception as exc:  # declaring may race a broker restart
                log.warning("consumer start failed, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1.0)
        self._consumer_started = True

    async def stop(self) -> None:
        """Graceful: stop intake, finish in-flight work, flush the outbox, close."""
        if self._consumer_started:
            await self.consumer.stop()
        for worker in self._workers:
            await worker.stop()
        if self._run_relay:
            await self.relay.stop()
        pending = [task for task in self._tasks if not task.done()]
        still_running: set[asyncio.Task[Any]] = set()
        if pending:
            _, still_running = await asyncio.wait(pending, timeout=5.0)
            for task in still_running:
                task.cancel()
            for task in still_running:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.broker.close()
        await self.engine.dispose()
        if still_running:
            # E.g. the broker or the database is away: nothing is lost (the outbox
            # keeps what was not published, the broker what was not acknowledged),
            # but this process did not finish it.
            log.warning(
                "stopped, leaving work to the next process to start",
                extra={"unfinished": sorted(task.get_name() for task in still_running)},
            )
        else:
            log.info("stopped cleanly: intake stopped, work in hand finished, outbox flushed")

    async def readiness(self) -> dict[str, bool]:
        database, broker = await asyncio.gather(self._database_reachable(), self.broker.ping())
        return {"database": database, "broker": broker}

    async def _database_reachable(self) -> bool:
        try:
            async with asyncio.timeout(2.0), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def queue_state(self, queue: str | None = None) -> tuple[int, int] | None:
        """(messages ready, consumers) of the service's queue (or another one) as the
        broker sees it, or None while the broker is unreachable."""
        if not self.broker.is_connected:
            return None
        try:
            async with asyncio.timeout(2.0):
                # A channel of its own: a passive declare of a missing queue closes
                # the channel, which must not take the consumer's or publisher's along.
                connection = await self.broker.wait_connected()
                channel = await connection.channel(publisher_confirms=False)
                try:
                    declared = await channel.declare_queue(
                        queue or self.consumer.queue_name, passive=True
                    )
                    result = declared.declaration_result
                    return int(result.message_count or 0), int(result.consumer_count or 0)
                finally:
                    if not channel.is_closed:
                        await channel.close()
        except Exception as exc:
            log.debug("queue state unavailable", extra={"error": repr(exc)})
            return None

    async def capacity_report(
        self, target_utilisation: float = 0.7, window_seconds: float | None = None
    ) -> QueueReport:
        state = await self.queue_state()
        # Without the broker's word, this process is the one consumer known of.
        depth, consumers = state if state is not None else (None, 1)
        return queue_report(
            self.consumer.queue_name,
            self.consumer.statistics.snapshot(window_seconds=window_seconds),
            observed_depth=depth,
            consumers=consumers,
            target_utilisation=target_utilisation,
            in_flight=self.consumer.in_flight,
        )

    async def refresh_gauges(self) -> None:
        """Read what /metrics shows but nothing counts as it happens: outbox lag,
        queue depths (work and dead letters), and the service's own gauges."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                metrics.OUTBOX_LAG_SECONDS.set(await self.relay.oldest_pending_age())
        for queue in (self.consumer.queue_name, dead_letter_queue_name(self.consumer.queue_name)):
            state = await self.queue_state(queue)
            if state is not None:
                metrics.QUEUE_DEPTH.labels(queue).set(state[0])
        for collect in self._gauge_collectors:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await collect(self.engine)
