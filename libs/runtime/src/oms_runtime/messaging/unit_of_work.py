"""One database transaction: the state change, the outgoing messages, the inbox mark.

Messages published through a unit of work are written to the outbox table in the
same transaction as the state change, so either both happen or neither; the relay
publishes them after commit. A unit of work opened for an incoming message first
claims its `message_id` in the inbox: a redelivered or duplicated message finds the
claim and is skipped (`AlreadyHandled`), which makes every consumer idempotent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from sqlalchemy import Table, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction
from sqlalchemy.sql.dml import ReturningInsert

from oms_contracts import Command, Envelope, Message
from oms_runtime import tracing
from oms_runtime.messaging.tables import MessagingTables


class AlreadyHandled(Exception):
    """The incoming message was handled before (found in the inbox)."""


class UnitOfWork:
    def __init__(
        self,
        engine: AsyncEngine,
        tables: MessagingTables,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        inbox_message: Envelope | None = None,
    ) -> None:
        self._engine = engine
        self._tables = tables
        self.correlation_id = correlation_id
        self.causation_id = causation_id
        self._inbox_message = inbox_message
        self._pending: list[dict[str, Any]] = []
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None
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
        self._connection = await self._engine.connect()
        self._transaction = await self._connection.begin()
        self._pending.clear()
        self.published = []
        if self._inbox_message is not None:
            await self._claim(self._inbox_message)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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
        self._pending.append(
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
        )
        self.published.append(envelope)
        return envelope

    async def commit(self) -> None:
        if self._transaction is None:
            raise RuntimeError("unit of work used outside `async with`")
        if self._pending:
            await self.connection.execute(self._tables.outbox.insert(), self._pending)
            self._pending.clear()
        await self._transaction.commit()
        self._transaction = None

    async def rollback(self) -> None:
        if self._transaction is not None:
            await self._transaction.rollback()
            self._transaction = None
        self._pending.clear()

    async def _close(self) -> None:
        if self._connection is None:
            return
        try:
            await self.rollback()
        finally:
            await self._connection.close()
            self._connection = None


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

    def for_message(self, envelope: Envelope) -> U:
        return self._cls(
            self._engine,
            self._tables,
            correlation_id=envelope.correlation_id,
            causation_id=str(envelope.message_id),
            inbox_message=envelope,
        )
