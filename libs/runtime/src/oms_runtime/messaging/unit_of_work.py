"""One database transaction: the state change, the outgoing messages, the inbox mark.

Messages published through a unit of work are written to the outbox table in the
same transaction as the state change, so either both happen or neither; the relay
publishes them after commit. A unit of work opened for an incoming message first
claims its `message_id` in the inbox: a redelivered or duplicated message finds the
claim and is skipped (`AlreadyHandled`), which makes every consumer idempotent.

The consumer handles the messages it has in hand (one, or more under load) in one
`SharedTransaction`: each message still gets its own unit of work (same handler
code), but they share one BEGIN/COMMIT, one inbox claim and one statement of staged
writes, and the service may load what they all touch in one statement
(`BatchLoader`). A unit of work in a shared transaction that ends without committing
(or raises) makes the consumer roll the lot back and handle each message alone, so
the result is the same as one by one.

A transaction costs few round trips (see `transaction.py`): BEGIN with the claim, the
handler's reads, one write statement, COMMIT.

A handler's unit of work does not publish anything by hand: its repositories track
the aggregates they load or add, and `commit` collects the events those recorded,
turns them into messages with the service's `EventMap` (see `events.py`), and writes
back the aggregates that changed, all in that one write statement.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from oms_contracts import Command, Envelope, Message
from oms_runtime import tracing
from oms_runtime.bulk import Computed, FollowUp, StagedWrites
from oms_runtime.messaging.broker import OutgoingMessage
from oms_runtime.messaging.events import EventMap, RecordsEvents, dispatch_new_events
from oms_runtime.messaging.tables import MessagingTables
from oms_runtime.messaging.transaction import Transaction, inbox_claim, inserted_count
from oms_runtime.repository import RowCache

log = logging.getLogger(__name__)


@dataclass
class OutboxDelivery:
    """How committed outbox rows reach a relay: handed over to the one in this
    process, or announced with NOTIFY to one elsewhere (neither: a sweep finds them)."""

    hand_over: Callable[[list[OutgoingMessage]], None] | None = None
    notify_channel: str | None = None


class AbstractUnitOfWork(Protocol):
    """What a handler needs of any unit of work besides its repositories: a
    transaction to enter, and `commit` (leaving without it discards the work).
    Each service's handlers see a protocol that adds its repositories to this."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


class TracksAggregates(Protocol):
    """A repository, as its unit of work sees it (see `oms_runtime.repository`)."""

    def tracked(self) -> Sequence[RecordsEvents]: ...

    async def flush(self) -> None: ...


class AlreadyHandled(Exception):
    """The incoming message was handled before (found in the inbox)."""


class NeedsOwnTransaction(Exception):
    """A unit of work in a shared transaction ended without committing: only a
    transaction of its own can give it that (its writes discarded, the rest kept)."""


class SharedTransaction:
    """One transaction for several incoming messages (see the module docstring).

    Where the service's batch loader does not lock up front, in key order, what the
    messages touch, they lock rows in the order they come, not in one global order,
    so two shared transactions (two replicas) could wait for each other. A lock wait
    longer than `lock_timeout` therefore fails the shared transaction, well before
    Postgres' deadlock detection (deadlock_timeout, 1 s by default) would kill some
    other transaction; its messages are then handled one by one, in transactions
    that lock in their usual order.
    """

    def __init__(
        self, engine: AsyncEngine, tables: MessagingTables, lock_timeout_ms: int = 200
    ) -> None:
        self._transaction = Transaction(engine)
        self._lock_timeout_ms = lock_timeout_ms
        self._tables = tables
        self._staged = StagedWrites()
        self._after_commit: list[Callable[[], None]] = []
        # The rows the batch's messages read, as they left them (the batch loader
        # reads what they all touch up front).
        self.rows = RowCache()

    @property
    def connection(self) -> AsyncConnection:
        return self._transaction.connection

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._transaction.close()

    async def claim(self, envelopes: list[Envelope]) -> set[uuid.UUID] | None:
        """Begin, and claim the messages in the inbox, in one round trip. Returns the
        ids not handled before; None when only some of several were new (rare: a
        redelivery), which the shared transaction cannot tell apart."""
        unique = {envelope.message_id: envelope.type for envelope in envelopes}
        status = await self._transaction.begin(
            f"SET LOCAL lock_timeout = {int(self._lock_timeout_ms)}",
            inbox_claim(self._tables.inbox, list(unique.items())),
        )
        claimed = inserted_count(status)
        if claimed == len(unique):
            return set(unique)
        if claimed == 0:
            return set()
        return None

    async def begin(self) -> None:
        """Begin with nothing to claim: shared work that is no message's (e.g. a
        batch of a worker's results)."""
        await self._transaction.begin(f"SET LOCAL lock_timeout = {int(self._lock_timeout_ms)}")

    def stage(self, staged: StagedWrites, after_commit: list[Callable[[], None]]) -> None:
        self._staged.extend(staged)
        self._after_commit.extend(after_commit)

    async def commit(self) -> None:
        self._after_commit.extend(await self._transaction.write(self._staged))
        self._staged.clear()
        await self._transaction.commit()
        _run_all(self._after_commit)


class UnitOfWork:
    def __init__(
        self,
        engine: AsyncEngine,
        tables: MessagingTables,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        inbox_message: Envelope | None = None,
        shared: SharedTransaction | None = None,
        delivery: OutboxDelivery | None = None,
        events: EventMap[Any, Any] | None = None,
    ) -> None:
        self._engine = engine
        self._tables = tables
        self.correlation_id = correlation_id
        self.causation_id = causation_id
        self._inbox_message = inbox_message
        self._delivery = delivery or OutboxDelivery()
        self._outgoing: list[OutgoingMessage] = []
        self._staged = StagedWrites()
        self._after_commit: list[Callable[[], None]] = []
        self._transaction: Transaction | None = None
        self._connection: AsyncConnection | None = None
        self._shared = shared
        self._committed = False
        self._events = events
        self._repositories: list[TracksAggregates] = []
        self._rows = RowCache()
        self.published: list[Envelope] = []

    @property
    def incoming(self) -> Envelope | None:
        """The message this unit of work handles, if any."""
        return self._inbox_message

    @property
    def shared(self) -> SharedTransaction | None:
        """The batch's transaction this unit of work is part of, if any."""
        return self._shared

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("unit of work used outside `async with`")
        return self._connection

    @property
    def rows(self) -> RowCache:
        """The rows this transaction read, as its work left them (the batch's)."""
        return self._shared.rows if self._shared is not None else self._rows

    def track(self, repository: TracksAggregates) -> None:
        """A repository's aggregates have their events collected and their rows
        written back when the unit of work commits."""
        self._repositories.append(repository)

    async def __aenter__(self) -> Self:
        self._staged = StagedWrites()
        self._outgoing = []
        self._after_commit = []
        self.published = []
        self._committed = False
        self._repositories = []
        self._rows = RowCache()
        if self._shared is not None:
            # Begun, and the message claimed, by the shared transaction.
            self._connection = self._shared.connection
            return self
        self._transaction = Transaction(self._engine)
        message = self._inbox_message
        if message is None:
            await self._transaction.open()
        else:
            status = await self._transaction.begin(
                inbox_claim(self._tables.inbox, [(message.message_id, message.type)])
            )
            if inserted_count(status) == 0:
                await self._close()
                raise AlreadyHandled(str(message.message_id))
        self._connection = self._transaction.connection
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._shared is not None:
            self._connection = None
            self._staged = StagedWrites()
            self._after_commit = []
            if exc is None and not self._committed:
                raise NeedsOwnTransaction(str(self._inbox_message and self._inbox_message.type))
            return
        await self._close()

    def publish(self, message: Message, *, correlation_id: str | None = None) -> Envelope:
        """Queue a message to be written to the outbox on commit."""
        envelope = Envelope.wrap(
            message,
            correlation_id=correlation_id or self.correlation_id,
            causation_id=self.causation_id,
        )
        outgoing = OutgoingMessage(
            exchange=message.exchange,
            routing_key=message.routing_key,
            body=envelope.model_dump_json().encode(),
            message_id=str(envelope.message_id),
            message_type=message.routing_key,
            correlation_id=envelope.correlation_id,
            # The trace goes on with every message the work causes.
            headers={"traceparent": tracing.outgoing_traceparent()},
            # A command nobody can receive yet must stay in the outbox rather than
            # vanish; events without subscribers are fine to drop.
            mandatory=isinstance(message, Command),
        )
        self.insert_on_commit(
            self._tables.outbox,
            [
                {
                    "message_id": envelope.message_id,
                    "exchange": outgoing.exchange,
                    "routing_key": outgoing.routing_key,
                    "message_type": outgoing.message_type,
                    "correlation_id": outgoing.correlation_id,
                    "headers": outgoing.headers,
                    "body": outgoing.body,
                    "mandatory": int(outgoing.mandatory),
                }
            ],
        )
        self._outgoing.append(outgoing)
        self.published.append(envelope)
        return envelope

    def insert_on_commit(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert `rows` into `table` when the unit of work commits, in the one
        statement that makes all its staged writes. For rows nothing in the
        transaction reads back (history, outbox)."""
        self._staged.insert(table, rows)

    def follow_up_on_commit(self, write: FollowUp, items: Sequence[Any]) -> None:
        """Have `write` make its writes of `items` right after the staged statement,
        once for the whole transaction (a batch's units of work together): for
        writes that need the rows that statement inserts, or that answer with rows."""
        self._staged.follow_up(write, items)

    def update_on_commit(
        self, table: Table, key: str, row: dict[str, Any], *, computed: Computed = ()
    ) -> None:
        """Update the row of `table` whose `key` column is `row[key]` when the unit of
        work commits (with its other staged writes); the caller keeps what it wrote
        for any later read in the transaction."""
        self._staged.update(table, key, row, computed=computed)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the changes are committed (e.g. count a metric that
        must not count work rolled back and done again)."""
        self._after_commit.append(callback)

    def _deliver_outbox_on_commit(self) -> None:
        if not self._outgoing:
            return
        if self._delivery.hand_over is not None:
            self._after_commit.append(functools.partial(self._delivery.hand_over, self._outgoing))
        self._staged.notify = self._delivery.notify_channel
        self._outgoing = []

    def _tracked_aggregates(self) -> list[RecordsEvents]:
        return [
            aggregate for repository in self._repositories for aggregate in repository.tracked()
        ]

    def _publish_with(self, message: Message, correlation_id: str | None) -> Envelope:
        return self.publish(message, correlation_id=correlation_id)

    async def commit(self) -> None:
        await dispatch_new_events(self._events, self, self._tracked_aggregates, self._publish_with)
        for repository in self._repositories:
            await repository.flush()
        self._deliver_outbox_on_commit()
        if self._shared is not None:
            if self._connection is None:
                raise RuntimeError("unit of work used outside `async with`")
            self._shared.stage(self._staged, self._after_commit)
            self._staged, self._after_commit = StagedWrites(), []
            self._committed = True
            return
        if self._transaction is None:
            raise RuntimeError("unit of work used outside `async with`")
        self._after_commit.extend(await self._transaction.write(self._staged))
        self._staged = StagedWrites()
        await self._transaction.commit()
        callbacks, self._after_commit = self._after_commit, []
        _run_all(callbacks)

    async def rollback(self) -> None:
        """Discard the work; the unit of work is over."""
        self._staged, self._after_commit, self._outgoing = StagedWrites(), [], []
        if self._shared is not None:
            # Its writes cannot be taken back alone; __aexit__ asks for a retry.
            self._committed = False
            return
        await self._close()

    async def _close(self) -> None:
        transaction, self._transaction = self._transaction, None
        self._connection = None
        if transaction is not None:
            await transaction.close()


def _run_all(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:  # the commit stands; a failed side note must not undo it
            log.exception("after-commit callback failed")


U = TypeVar("U", bound=UnitOfWork)

# Loads what a batch's messages (not handled before) will read, into `shared.rows`.
BatchLoader = Callable[[SharedTransaction, list[Envelope]], Awaitable[None]]


class UnitOfWorkFactory(Generic[U]):
    """Builds a service's unit of work: plain for API calls and workers, or bound to
    an incoming message (inbox claim, correlation and causation ids); every one
    with the service's event map.

    `cls` is the service's unit of work class, or any callable taking the same
    arguments (e.g. a `functools.partial` binding service-specific settings)."""

    def __init__(
        self,
        cls: Callable[..., U],
        engine: AsyncEngine,
        tables: MessagingTables,
        batch_loader: BatchLoader | None = None,
        events: EventMap[Any, Any] | None = None,
    ) -> None:
        self._cls = cls
        self._engine = engine
        self._tables = tables
        self._batch_loader = batch_loader
        self._events = events
        # Set up by the service runtime once it knows where its relay runs.
        self.delivery = OutboxDelivery()

    def __call__(self, *, correlation_id: str | None = None) -> U:
        return self._cls(
            self._engine,
            self._tables,
            correlation_id=correlation_id,
            delivery=self.delivery,
            events=self._events,
        )

    def for_message(self, envelope: Envelope, shared: SharedTransaction | None = None) -> U:
        """A unit of work for one incoming message: alone (its own transaction and
        inbox claim) or as part of `shared`, which has claimed the message already."""
        return self._cls(
            self._engine,
            self._tables,
            correlation_id=envelope.correlation_id,
            causation_id=str(envelope.message_id),
            inbox_message=envelope,
            shared=shared,
            delivery=self.delivery,
            events=self._events,
        )

    def within(self, shared: SharedTransaction, *, correlation_id: str | None = None) -> U:
        """A plain unit of work (no message to claim) that is part of `shared`."""
        return self._cls(
            self._engine,
            self._tables,
            correlation_id=correlation_id,
            shared=shared,
            delivery=self.delivery,
            events=self._events,
        )

    def shared_transaction(self) -> SharedTransaction:
        return SharedTransaction(self._engine, self._tables)

    async def load_batch(self, shared: SharedTransaction, envelopes: list[Envelope]) -> None:
        """Let the service load (and lock) what a batch's messages will touch, in one
        statement instead of one per message."""
        if self._batch_loader is not None:
            await self._batch_loader(shared, envelopes)
