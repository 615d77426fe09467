"""The outbox relay: publishes committed outbox rows, then deletes them.

Two ways rows reach it:

- *handed over* (the usual case): a unit of work in the same process hands its
  messages to the relay once they are committed. The relay publishes them with
  confirms and then deletes their rows in one statement; nothing is read back.
- *swept*: rows nobody handed over (their process died between commit and
  publishing, or it runs without a relay and NOTIFYs a standalone one) are taken
  with `FOR UPDATE SKIP LOCKED`, so any number of relays can sweep side by side.
  A sweep on a timer leaves rows younger than `grace` alone: those belong to a live
  process's hand-over, which is about to publish them. A sweep woken by NOTIFY takes
  every row (the writers that notify have no relay of their own).

A hand-over that cannot be published (the broker is down, or its channel is still
being restored after a reconnect) keeps the ids of its rows, and the relay retries
exactly those rows, young or not, every second or sooner; left to the timed sweep
they would wait out the grace period first: seconds, which after a broker restart
were enough for a saga step to miss its deadline. Rows that still fail after about
ten seconds (a command nobody can receive yet) are left to the timed sweep.

A row is deleted only after the broker has confirmed its message; a crash in between
republishes it (at-least-once; consumers dedupe on `message_id`). The rows of
confirmed hand-overs are deleted together, `delete_delay` after the first of them
was confirmed or once a batch of them has gathered: each delete is a commit with
its own WAL flush, and one per hand-over cost more than the publishing. They are
deleted before any sweep (so none sees them; the timed one leaves young rows alone
anyway) and before the relay stops. Only the rows of confirmed messages are deleted:
a command nobody can receive yet stays in the outbox without holding back, or
dragging into every retry, the messages sent with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Delete,
    Interval,
    Select,
    Table,
    Uuid,
    any_,
    bindparam,
    delete,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from oms_runtime import metrics
from oms_runtime.messaging.broker import Broker, OutgoingMessage
from oms_runtime.messaging.tables import MessagingTables
from oms_runtime.messaging.transaction import Transaction
from oms_runtime.notifications import listen_forever

log = logging.getLogger(__name__)

T = TypeVar("T")


# About ten seconds of retries at the relay's backoff, longer than a reconnect.
_UNSENT_ATTEMPTS = 10


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        tables: MessagingTables,
        broker: Broker,
        *,
        listen_dsn: str | None,
        batch_size: int = 200,
        poll_interval: float = 2.0,
        grace: float = 5.0,
        delete_delay: float = 0.2,
    ) -> None:
        self._engine = engine
        self._tables = tables
        self._broker = broker
        # None: nobody notifies this relay (its writers hand over), so no LISTEN.
        self._listen_dsn = listen_dsn
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._grace = timedelta(seconds=grace)
        self._handed: list[OutgoingMessage] = []
        # Rows of confirmed hand-overs not deleted yet, and since when they wait.
        self._published: list[uuid.UUID] = []
        self._published_since = 0.0
        self._delete_delay = delete_delay
        # Rows of handed-over messages whose publishing failed; bounded, so a long
        # outage cannot pile them up (past the bound the timed sweep takes them).
        self._unsent: list[uuid.UUID] = []
        self._max_unsent = batch_size * 10
        self._unsent_attempts = 0
        # Set by NOTIFY (and by the listener at each connect): sweep every row.
        self._notified = False
        self._wakeup = asyncio.Event()
        self._stopping = False

    def hand_over(self, messages: list[OutgoingMessage]) -> None:
        """Messages whose outbox rows were just committed in this process."""
        self._handed.extend(messages)
        self._wakeup.set()

    def _on_notify(self, _: str) -> None:
        self._notified = True
        self._wakeup.set()

    async def run(self) -> None:
        listener = (
            asyncio.create_task(
                listen_forever(self._listen_dsn, self._tables.notify_channel, self._on_notify),
                name="outbox-listener",
            )
            if self._listen_dsn
            else None
        )
        try:
            await self._relay_forever()
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def stop(self) -> None:
        """Publish what was handed over, sweep what is left, and return."""
        self._stopping = True
        self._wakeup.set()

    async def _relay_forever(self) -> None:
        # Short, so the relay notices a broker that is back within a second.
        backoff = 0.1
        failures = 0
        next_sweep = 0.0
        while True:
            # Cleared before the work, so a hand-over or notification that arrives
            # during it is not lost (the next wait returns at once).
            self._wakeup.clear()
            busy = False
            try:
                if self._handed:
                    await self._publish_handed()
                    busy = bool(self._handed)  # more than a batch was handed over
                sweeping = self._notified or self._stopping or time.monotonic() >= next_sweep
                await self._delete_confirmed(at_once=sweeping)
                if sweeping:
                    everything = self._notified or self._stopping
                    self._notified = False
                    swept = await self.publish_pending(
                        min_age=timedelta(0) if everything else self._grace
                    )
                    busy = busy or swept >= self._batch_size
                    # A full sweep may have left more behind: sweep again at once.
                    self._notified = self._notified or (everything and swept >= self._batch_size)
                    next_sweep = time.monotonic() + self._poll_interval
                # Last, so rows that keep failing (a command nobody can receive yet)
                # cannot hold up the sweep.
                if self._unsent:
                    await self._publish_unsent()
                    busy = busy or bool(self._unsent)
                if failures:
                    log.warning("outbox relay recovered", extra={"failed_attempts": failures})
                backoff, failures = 0.1, 0
            except Exception as exc:  # the relay must outlive any broker/db outage
                # Once per outage at warning level: retries come every second.
                failures += 1
                log.log(
                    logging.WARNING if failures == 1 else logging.DEBUG,
                    "outbox relay failed, retrying",
                    extra={"error": repr(exc), "failed_attempts": failures},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            if self._stopping and not busy and not self._handed and not self._unsent:
                return
            if not busy:
                wake_at = next_sweep
                if self._published:
                    wake_at = min(wake_at, self._published_since + self._delete_delay)
                with contextlib.suppress(TimeoutError):
                    timeout = max(0.0, wake_at - time.monotonic())
                    await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def _publish_handed(self) -> int:
        batch, self._handed = self._handed[: self._batch_size], self._handed[self._batch_size :]
        outcomes: list[Exception | None]
        try:
            publisher = await self._broker.publisher()
            outcomes = await publisher.publish_each(batch)
        except Exception as exc:  # no publisher, no channel: nothing went out
            outcomes = [exc] * len(batch)
        sent, unsent, failure = _by_outcome(batch, outcomes)
        if sent:
            if not self._published:
                self._published_since = time.monotonic()
            self._published.extend(uuid.UUID(message.message_id) for message in sent)
            for message in sent:
                metrics.MESSAGES_PUBLISHED.labels(message.message_type).inc()
        if failure is not None:
            # Their rows stay in the outbox, and so do those of the messages handed
            # over meanwhile; only their ids are kept, to retry those rows.
            failed = [uuid.UUID(message.message_id) for message in (*unsent, *self._handed)]
            self._handed.clear()
            kept = failed[: max(0, self._max_unsent - len(self._unsent))]
            self._unsent.extend(kept)
            log.info(
                "publishing handed-over messages failed; retrying them",
                extra={"messages": len(failed), "left_to_the_sweep": len(failed) - len(kept)},
            )
            raise failure
        return len(batch)

    async def _delete_confirmed(self, *, at_once: bool) -> None:
        """Delete the rows of confirmed hand-overs: now if `at_once`, else once a batch
        has gathered or the first has waited `delete_delay`."""
        if not self._published:
            return
        due = (
            at_once
            or len(self._published) >= self._batch_size
            or time.monotonic() - self._published_since >= self._delete_delay
        )
        if not due:
            return
        ids = self._published
        # Kept until the delete succeeds: a failed one is retried with the rest.
        await Transaction(self._engine).run_alone(_delete_published(self._tables.outbox), ids)
        self._published = []

    async def _publish_unsent(self) -> None:
        ids, self._unsent = self._unsent[: self._batch_size], self._unsent[self._batch_size :]
        try:
            # Rows another relay holds or already published are simply not found.
            await self._publish_taken(_take_by_id_statement(self._tables.outbox), {"b_ids": ids})
        except Exception:
            self._unsent_attempts += 1
            if self._unsent_attempts < _UNSENT_ATTEMPTS:
                self._unsent[:0] = ids
            else:
                # Rows that keep failing are the timed sweep's, as any other.
                self._unsent.clear()
                self._unsent_attempts = 0
            raise
        if not self._unsent:
            self._unsent_attempts = 0

    async def publish_pending(self, min_age: timedelta = timedelta(0)) -> int:
        """Publish one batch of rows at least `min_age` old; returns how many went out."""
        return await self._publish_taken(
            _take_statement(self._tables.outbox),
            {"b_limit": self._batch_size, "b_min_age": min_age},
        )

    async def _publish_taken(self, take: Select[Any], arguments: dict[str, Any]) -> int:
        """Publish the rows `take` locks; delete those the broker confirmed. Returns
        how many went out; raises the first failure after deleting the rest."""
        publisher = await self._broker.publisher()
        async with self._engine.begin() as conn:
            # Locked while they are published, deleted once confirmed, in one
            # transaction: a crash in between leaves them to be published again.
            rows = sorted((await conn.execute(take, arguments)).all())
            if not rows:
                return 0
            outcomes = await publisher.publish_each(
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
            # Only the confirmed ones: a command nobody can receive yet stays, and
            # the rows taken with it are not published again with it next time.
            sent, _, failure = _by_outcome(rows, outcomes)
            if sent:
                await conn.execute(
                    _delete_by_id_statement(self._tables.outbox), {"b_ids": [r.id for r in sent]}
                )
        for row in sent:
            metrics.MESSAGES_PUBLISHED.labels(row.message_type).inc()
        if failure is not None:
            raise failure
        return len(sent)

    async def oldest_pending_age(self) -> float:
        """Seconds the oldest unpublished row has waited (0 when none): the lag."""
        outbox = self._tables.outbox
        async with self._engine.connect() as conn:
            age = await conn.scalar(
                select(func.extract("epoch", func.now() - func.min(outbox.c.created_at)))
            )
        return float(age or 0.0)


def _by_outcome(
    items: Sequence[T], outcomes: Sequence[Exception | None]
) -> tuple[list[T], list[T], Exception | None]:
    """The items the broker confirmed, those it did not, and the first reason why."""
    sent = [item for item, outcome in zip(items, outcomes, strict=True) if outcome is None]
    unsent = [item for item, outcome in zip(items, outcomes, strict=True) if outcome is not None]
    failure = next((outcome for outcome in outcomes if outcome is not None), None)
    return sent, unsent, failure


@functools.cache
def _take_statement(outbox: Table) -> Select[Any]:
    # Built once per service: it runs for every batch. The oldest rows no other
    # relay holds.
    return (
        select(*_relayed_columns(outbox))
        .where(outbox.c.created_at <= func.now() - bindparam("b_min_age", type_=Interval))
        .order_by(outbox.c.id)
        .limit(bindparam("b_limit"))
        .with_for_update(skip_locked=True)
    )


@functools.cache
def _take_by_id_statement(outbox: Table) -> Select[Any]:
    # The given rows, unless another relay holds them.
    return (
        select(*_relayed_columns(outbox))
        .where(outbox.c.message_id == any_(bindparam("b_ids", type_=ARRAY(Uuid))))
        .with_for_update(skip_locked=True)
    )


@functools.cache
def _delete_by_id_statement(outbox: Table) -> Delete:
    return delete(outbox).where(outbox.c.id == any_(bindparam("b_ids", type_=ARRAY(BigInteger))))


def _relayed_columns(outbox: Table) -> list[Any]:
    """What a taken row gives back: everything needed to publish it."""
    columns = outbox.c
    return [
        columns.id,
        columns.message_id,
        columns.exchange,
        columns.routing_key,
        columns.message_type,
        columns.correlation_id,
        columns.headers,
        columns.body,
        columns.mandatory,
    ]


@functools.cache
def _delete_published(outbox: Table) -> str:
    return f'DELETE FROM "{outbox.schema}"."{outbox.name}" WHERE message_id = ANY($1::uuid[])'
