"""One database transaction: the state change, the outgoing messages, the inbox mark.

Messages published through a unit of work are written to the outbox table in the
same transaction as the state change, so either both happen or neither; the relay
publishes them after commit. A unit of work opened for an incoming message first
claims its `message_id` in the inbox: a redelivered or duplicated message finds the
claim and is skipped (`AlreadyHandled`), which makes every consumer idempotent.

Under load the consumer handles the messages it has in hand in one `SharedTransaction`:
each message still gets its own unit of work (same handler code), but they share one
BEGIN/COMMIT, one inbox claim and one outbox insert. A unit of work in a shared
transaction that ends without committing (or raises) makes the consumer roll the lot
back and handle each message alone, so the result is the same as one by one.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from sqlalchemy import Table, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction
from sqlalchemy.sql.dml import Insert, ReturningInsert

from oms_contracts import Command, Envelope, Message
from oms_runtime import tracing
from oms_runtime.messaging.tables import MessagingTables

log = logging.getLogger(__name__)


class AlreadyHandled(Exception):
    """The incoming message was handled before (found in the inbox)."""


# Rows to insert when the transaction commits, per table, in the order given.
StagedRows = dict[Table, list[dict[str, Any]]]


class NeedsOwnTransaction(Exception):
    """A unit of work in a shared transaction ended without committing: only a
    transaction of its own can give it that (its writes discarded, the rest kept)."""


class SharedTransaction:
    """One transaction for several incoming messages (see the module docstring).

    Its messages lock their rows in the order they come, not in one global order,
    so two shared transactions (two replicas) could wait for each other. A lock wait
    longer than `lock_timeout` therefore fails the shared transaction, well before
    Postgres' deadlock detection (deadlock_timeout, 1 s by default) would kill some
    other transaction; its messages are then handled one by one, in transactions
    that lock in their usual order.
    """

    def __init__(
        self, engine: AsyncEngine, tables: MessagingTables, lock_timeout_ms: int = 200
    ) -> None:
        self._engine = engine
        self._lock_timeout_ms = lock_timeout_ms
        self._tables = tables
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None
        self._staged: StagedRows = {}
        self._after_commit: list[Callable[[], None]] = []

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("shared transaction used outside `async with`")
        return self._connection

    async def __aenter__(self) -> Self:
        self._connection = await self._engine.connect()
        self._transaction = await self._connection.begin()
        await self._connection.exec_driver_sql(
            f"SET LOCAL lock_timeout = {int(self._lock_timeout_ms)}"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._connection is None:
            return
        try:
            if self._transaction is not None:
                await self._transaction.rollback()
        finally:
            await self._connection.close()
            self._connection = None
            self._transaction = None

    async def claim(self, envelopes: list[Envelope]) -> set[uuid.UUID]:
        """Claim the messages in the inbox; returns the ids not handled before."""
        unique = {envelope.message_id: envelope.type for envelope in envelopes}
        claimed = await self.connection.execute(
            _claim_statement(self._tables.inbox),
            [{"b_message_id": key, "b_message_type": kind} for key, kind in unique.items()],
        )
        return {row[0] for row in claimed}

    def stage(self, staged: StagedRows, after_commit: list[Callable[[], None]]) -> None:
        for table, rows in staged.items():
            self._staged.setdefault(table, []).extend(rows)
        self._after_commit.extend(after_commit)

    async def commit(self) -> None:
        if self._transaction is None:
            raise RuntimeError("shared transaction used outside `async with`")
        await _insert_staged(self.connection, self._staged)
        self._staged.clear()
        await self._transaction.commit()
        self._transaction = None
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
    ) -> None:
        self._engine = engine
        self._tables = tables
        self.correlation_id = correlation_id
        self.causation_id = causation_id
        self._inbox_message = inbox_message
        self._staged: StagedRows = {}
        self._after_commit: list[Callable[[], None]] = []
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None
        self._shared = shared
        self._committed = False
        self.published: list[Envelope] = []

    @property
    def incoming(self) -> Envelope | None:
        """The message this unit of work handles, if any."""
        return self._inbox_message

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("unit of work used outside `async with`")
        return self._connection

    async def __aenter__(self) -> Self:
        self._staged = {}
        self._after_commit = []
        self.published = []
        self._committed = False
        if self._shared is not None:
            # Begun, and the message claimed, by the shared transaction.
            self._connection = self._shared.connection
            return self
        self._connection = await self._engine.connect()
        self._transaction = await self._connection.begin()
        if self._inbox_message is not None:
            await self._claim(self._inbox_message)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._shared is not None:
            self._connection = None
            self._staged = {}
            self._after_commit = []
            if exc is None and not self._committed:
                raise NeedsOwnTransaction(str(self._inbox_message and self._inbox_message.type))
            return
        await self._close()

    async def _claim(self, envelope: Envelope) -> None:
        claimed = await self.connection.execute(
            _claim_statement(self._tables.inbox),
            {"b_message_id": envelope.message_id, "b_message_type": envelope.type},
        )
        if claimed.first() is None:
            await self._close()
            raise AlreadyHandled(str(envelope.message_id))

    def publish(self, message: Message, *, correlation_id: str | None = None) -> Envelope:
        """Queue a message to be written to the outbox on commit."""
        envelope = Envelope.wrap(
            message,
            correlation_id=correlation_id or self.correlation_id,
            causation_id=self.causation_id,
        )
        self.insert_on_commit(
            self._tables.outbox,
            [
                {
                    "message_id": envelope.message_id,
                    "exchange": message.exchange,
                    "routing_key": message.routing_key,
                    "message_type": message.routing_key,
                    "correlation_id": envelope.correlation_id,
                    # The trace goes on with every message the work causes.
                    "headers": {"traceparent": tracing.outgoing_traceparent()},
                    "body": envelope.model_dump_json().encode(),
                    # A command nobody can receive yet must stay in the outbox rather
                    # than vanish; events without subscribers are fine to drop.
                    "mandatory": int(isinstance(message, Command)),
                }
            ],
        )
        self.published.append(envelope)
        return envelope

    def insert_on_commit(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert `rows` into `table` when the unit of work commits: one statement per
        table for everything staged, however many steps staged it. For append-only
        rows nothing in the transaction reads back (history, outbox)."""
        if rows:
            self._staged.setdefault(table, []).extend(rows)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the changes are committed (e.g. count a metric that
        must not count work rolled back and done again)."""
        self._after_commit.append(callback)

    async def commit(self) -> None:
        if self._shared is not None:
            if self._connection is None:
                raise RuntimeError("unit of work used outside `async with`")
            self._shared.stage(self._staged, self._after_commit)
            self._staged, self._after_commit = {}, []
            self._committed = True
            return
        if self._transaction is None:
            raise RuntimeError("unit of work used outside `async with`")
        await _insert_staged(self.connection, self._staged)
        self._staged = {}
        await self._transaction.commit()
        callbacks, self._after_commit = self._after_commit, []
        _run_all(callbacks)
        self._transaction = None

    async def rollback(self) -> None:
        if self._shared is not None:
            # Its writes cannot be taken back alone; __aexit__ asks for a retry.
            self._committed = False
            self._staged, self._after_commit = {}, []
            return
        if self._transaction is not None:
            await self._transaction.rollback()
            self._transaction = None
        self._staged, self._after_commit = {}, []

    async def _close(self) -> None:
        if self._connection is None:
            return
        try:
            await self.rollback()
        finally:
            await self._connection.close()
            self._connection = None


def _run_all(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:  # the commit stands; a failed side note must not undo it
            log.exception("after-commit callback failed")


async def _insert_staged(connection: AsyncConnection, staged: StagedRows) -> None:
    for table, rows in staged.items():
        await connection.execute(_insert_statement(table), rows)


@functools.cache
def _insert_statement(table: Table) -> Insert:
    return table.insert()


@functools.cache
def _claim_statement(inbox: Table) -> ReturningInsert[Any]:
    # Built once per service: it runs for every message handled.
    return (
        pg_insert(inbox)
        .values(message_id=bindparam("b_message_id"), message_type=bindparam("b_message_type"))
        .on_conflict_do_nothing()
        .returning(inbox.c.message_id)
    )


U = TypeVar("U", bound=UnitOfWork)


class UnitOfWorkFactory(Generic[U]):
    """Builds a service's unit of work: plain for API calls and workers, or bound to
    an incoming message (inbox claim, correlation and causation ids).

    `cls` is the service's unit of work class, or any callable taking the same
    arguments (e.g. a `functools.partial` binding service-specific settings)."""

    def __init__(self, cls: Callable[..., U], engine: AsyncEngine, tables: MessagingTables) -> None:
        self._cls = cls
        self._engine = engine
        self._tables = tables

    def __call__(self, *, correlation_id: str | None = None) -> U:
        return self._cls(self._engine, self._tables, correlation_id=correlation_id)

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
        )

    def shared_transaction(self) -> SharedTransaction:
        return SharedTransaction(self._engine, self._tables)
