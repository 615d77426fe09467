"""A database transaction begun and ended by hand, to save round trips.

A round trip to Postgres costs more CPU (system calls and wake-ups on both sides)
than the small statements of a message handler, so a handler's transaction is
shaped to need as few as possible:

1. `BEGIN` travels with the statements that need no answer but a count (the inbox
   claim, `SET LOCAL`), in one simple-protocol query;
2. the handler's reads (SQLAlchemy on the same connection);
3. every staged write in one statement (see `oms_runtime.bulk`), and the few
   writes that must follow it, each once for the whole transaction;
4. `COMMIT`.

For that (`begin`) the connection comes from the engine's pool in AUTOCOMMIT mode, so
SQLAlchemy sends no BEGIN/COMMIT of its own while the transaction is ours; it is
always ended here (rolled back unless committed) before it goes back to the pool.
A unit of work with no message to claim (an API call, a worker) instead lets
SQLAlchemy begin with its first statement (`open`); one that only writes then needs
a single round trip: its write statement, a transaction by itself.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

import asyncpg
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from oms_runtime.bulk import StagedWrites

log = logging.getLogger(__name__)

# Message types are routing keys from the catalog; anything else never reaches SQL.
_MESSAGE_TYPE = re.compile(r"[A-Za-z0-9_.\-]{1,200}")


class Transaction:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._raw: asyncpg.Connection | None = None
        self._open = False
        # Begun by SQLAlchemy with the first statement it sends, if any (`open`).
        self._lazy = False

    @property
    def connection(self) -> AsyncConnection:
        """For SQLAlchemy statements inside the transaction."""
        if self._connection is None:
            raise RuntimeError("transaction used before begin() or after close()")
        return self._connection

    @property
    def raw(self) -> asyncpg.Connection:
        """The asyncpg connection, for statements SQLAlchemy would only slow down."""
        if self._raw is None:
            raise RuntimeError("transaction used before begin() or after close()")
        return self._raw

    async def begin(self, *then: str) -> str:
        """BEGIN, then the parameterless statements `then`, in one round trip;
        returns the command tag of the last one (e.g. `INSERT 0 1`)."""
        raw = await self._connect()
        self._open = True
        try:
            status: str = await raw.execute("; ".join(("BEGIN", *then)))
        except BaseException:
            await self.close()
            raise
        return status

    async def open(self) -> None:
        """A transaction that SQLAlchemy begins with the first statement sent through
        `connection`. A unit of work that only writes sends none: its one write
        statement is then a transaction of its own (one round trip in all)."""
        self._connection = await self._engine.connect()
        try:
            fairy = await self._connection.get_raw_connection()
            self._raw = fairy.driver_connection
        except BaseException:
            await self.close()
            raise
        self._lazy = True

    async def run_alone(self, sql: str, *arguments: object) -> str:
        """One statement in a transaction of its own (autocommit), then close."""
        raw = await self._connect()
        try:
            status: str = await raw.execute(sql, *arguments)
            return status
        finally:
            await self.close()

    async def _connect(self) -> asyncpg.Connection:
        self._connection = await self._engine.connect()
        try:
            await self._connection.execution_options(isolation_level="AUTOCOMMIT")
            fairy = await self._connection.get_raw_connection()
            self._raw = fairy.driver_connection
        except BaseException:
            await self.close()
            raise
        return self.raw

    async def write(self, staged: StagedWrites) -> list[Callable[[], None]]:
        """Make the staged writes: their one statement, then their follow-up writes;
        returns what those ask to run once the transaction has committed."""
        statement = staged.statement()
        if staged.follow_ups and self._lazy and not self.connection.in_transaction():
            # Nothing was read, so nothing has begun a transaction yet; more than one
            # statement must still be one transaction.
            await self.raw.execute("BEGIN")
            self._lazy, self._open = False, True
        if statement is not None:
            sql, arguments = statement
            await self.raw.execute(sql, *arguments)
        after_commit: list[Callable[[], None]] = []
        for write, items in staged.follow_ups.items():
            after_commit.extend(await write(self.raw, items))
        return after_commit

    async def commit(self) -> None:
        if self._lazy:
            if self.connection.in_transaction():
                await self.connection.commit()
            return
        await self.raw.execute("COMMIT")
        self._open = False

    async def close(self) -> None:
        """Roll back what was not committed and give the connection back."""
        connection, raw, was_open = self._connection, self._raw, self._open
        self._connection, self._raw, self._open, self._lazy = None, None, False, False
        if connection is None:
            return
        try:
            # (A transaction SQLAlchemy began, it rolls back when the connection
            # goes back to the pool.)
            if raw is None or raw.is_closed():
                await self._lost(connection)
            elif was_open:
                await raw.execute("ROLLBACK")
        except Exception as exc:
            # Broken, or mid-statement: never hand it out again.
            log.warning("rollback failed; dropping the connection", extra={"error": repr(exc)})
            await self._lost(connection)
        except BaseException:
            await connection.invalidate()
            raise
        finally:
            await connection.close()

    async def _lost(self, connection: AsyncConnection) -> None:
        """The connection is dead (the server restarted, the network failed): so are,
        most likely, the others in the pool. SQLAlchemy would notice on its own
        statements; on ours, drop them all, as it would."""
        await connection.invalidate()
        await self._engine.dispose()


def inbox_claim(inbox: Table, messages: list[tuple[uuid.UUID, str]]) -> str:
    """The parameterless claim of `messages` (id, type) in the inbox: its command tag
    counts the ones not claimed before. Ids are UUIDs and types are checked, so the
    literals are safe to write into the statement."""
    values = []
    for message_id, message_type in messages:
        if not isinstance(message_id, uuid.UUID) or not _MESSAGE_TYPE.fullmatch(message_type):
            raise ValueError(f"not a claimable message: {message_id!r} {message_type!r}")
        values.append(f"('{message_id}', '{message_type}')")
    target = f'"{inbox.schema}"."{inbox.name}"' if inbox.schema else f'"{inbox.name}"'
    return (
        f"INSERT INTO {target} (message_id, message_type) VALUES {', '.join(values)} "
        "ON CONFLICT DO NOTHING"
    )


def inserted_count(status: str) -> int:
    """Rows an INSERT's command tag (`INSERT 0 <n>`) says it wrote."""
    return int(status.rsplit(" ", 1)[-1])
