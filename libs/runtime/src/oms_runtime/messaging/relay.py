"""The outbox relay: publishes committed outbox rows, then deletes them.

Rows are claimed with `FOR UPDATE SKIP LOCKED`, so any number of relays (one per
service replica, or standalone relay processes) can run side by side without
publishing the same row concurrently. A row is deleted only after the broker has
confirmed it; a crash in between republishes it (at-least-once; consumers dedupe on
`message_id`). The relay sleeps until Postgres NOTIFYs it that rows were written,
with a slow poll as a safety net for a missed notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

from sqlalchemy import BigInteger, Delete, Select, Table, any_, bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from oms_runtime import metrics
from oms_runtime.messaging.broker import Broker, OutgoingMessage
from oms_runtime.messaging.tables import MessagingTables
from oms_runtime.notifications import listen_forever

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        tables: MessagingTables,
        broker: Broker,
        *,
        listen_dsn: str,
        batch_size: int = 200,
        poll_interval: float = 2.0,
    ) -> None:
        self._engine = engine
        self._tables = tables
        self._broker = broker
        self._listen_dsn = listen_dsn
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wakeup = asyncio.Event()
        self._stopping = False

    async def run(self) -> None:
        listener = asyncio.create_task(
            listen_forever(
                self._listen_dsn, self._tables.notify_channel, lambda _: self._wakeup.set()
            ),
            name="outbox-listener",
        )
        try:
            await self._relay_forever()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def stop(self) -> None:
        """Finish the batch in hand, then flush what is left and return."""
        self._stopping = True
        self._wakeup.set()

    async def _relay_forever(self) -> None:
        backoff = 0.2
        while True:
            # Cleared before the work, so a notification that arrives during it is
            # not lost (the next wait returns at once).
            self._wakeup.clear()
            try:
                published = await self.publish_pending()
                backoff = 0.2
            except Exception as exc:  # the relay must outlive any broker/db outage
                log.warning("outbox relay failed, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if self._stopping and published == 0:
                return
            if published < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many rows went out."""
        claim, delete_published = _relay_statements(self._tables.outbox)
        publisher = await self._broker.publisher()
        async with self._engine.begin() as conn:
            rows = (await conn.execute(claim, {"b_limit": self._batch_size})).all()
            if not rows:
                return 0
            await publisher.publish_many(
                [
                    OutgoingMessage(
                        exchange=row.exchange,
                        routing_key=row.routing_key,
                        body=row.body,
                        message_id=str(row.message_id),
                        message_type=row.message_type,
                        correlation_id=row.correlation_id,
                        headers=row.headers,
                        mandatory=bool(row.mandatory),
                    )
                    for row in rows
                ]
            )
            await conn.execute(delete_published, {"b_ids": [row.id for row in rows]})
        for row in rows:
            metrics.MESSAGES_PUBLISHED.labels(row.message_type).inc()
        return len(rows)

    async def oldest_pending_age(self) -> float:
        """Seconds the oldest unpublished row has waited (0 when none): the lag."""
        outbox = self._tables.outbox
        async with self._engine.connect() as conn:
            age = await conn.scalar(
                select(func.extract("epoch", func.now() - func.min(outbox.c.created_at)))
            )
        return float(age or 0.0)


@functools.cache
def _relay_statements(outbox: Table) -> tuple[Select[Any], Delete]:
    # Built once per service: they run for every batch.
    claim = (
        select(outbox)
        .order_by(outbox.c.id)
        .limit(bindparam("b_limit"))
        .with_for_update(skip_locked=True)
    )
    published = delete(outbox).where(
        outbox.c.id == any_(bindparam("b_ids", type_=ARRAY(BigInteger)))
    )
    return claim, published
