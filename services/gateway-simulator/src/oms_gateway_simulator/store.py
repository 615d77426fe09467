"""Where the ledger lives: in Postgres (durable, what runs next to the OMS) or in
memory (the simulator's own fast tests, or a quick try without a database).

A real gateway does not forget an authorization because it restarted, and neither
does the simulator with a database: its authorizations, the operations on them and
the answers remembered for idempotency keys are in its own schema,
`gateway_simulator`, created when it first connects. Each payment `POST` is one
transaction: the idempotency key is locked first (a duplicate waits, then replays),
then the authorization it acts on, and the new state, the operation and the answer
to replay commit together.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import asyncpg

from oms_gateway_simulator.idempotency import Scope, StoredResponse
from oms_gateway_simulator.ledger import Authorization, Operation, Recorded

logger = logging.getLogger(__name__)

SCHEMA = "gateway_simulator"


class StoreUnavailable(Exception):
    """The ledger cannot be reached; the request may be retried."""


class LedgerTransaction(Protocol):
    async def replay(self) -> StoredResponse | None:
        """The answer remembered for this transaction's idempotency key, if any."""

    async def authorization(self, authorization_id: str) -> Authorization | None:
        """The authorization, locked until the transaction ends; changes to it are
        kept only if passed to `changed`."""

    def added(self, auth: Authorization) -> None: ...

    def changed(self, auth: Authorization) -> None: ...

    def record(self, recorded: Sequence[Recorded]) -> None: ...

    def remember(self, response: StoredResponse) -> None: ...


class LedgerStore(Protocol):
    def transaction(
        self, scope: Scope
    ) -> AbstractAsyncContextManager[LedgerTransaction]:
        """Everything done through it commits when the block ends without error."""

    async def get(self, authorization_id: str) -> Authorization | None: ...

    async def by_reference(self, reference: str) -> list[Authorization]: ...

    async def stats(self) -> dict[str, Any]: ...

    async def reset(self) -> None: ...

    async def close(self) -> None: ...


def _stats(counts: Counter[str], holds_by_reference: dict[str, int]) -> dict[str, Any]:
    return {
        "authorizations_attempted": counts[Operation.ATTEMPT],
        "holds_placed": sum(holds_by_reference.values()),
        # Holds ever placed per reference; not decremented by voids, so tests can
        # assert "exactly one hold" for a payment.
        "holds_by_reference": holds_by_reference,
        "captures": counts[Operation.CAPTURE],
        "voids": counts[Operation.VOID],
        "refunds": counts[Operation.REFUND],
    }


# -- in memory ---------------------------------------------------------------------


class _MemoryTransaction:
    def __init__(self, store: MemoryStore, scope: Scope) -> None:
        self._store = store
        self._scope = scope
        self._added: list[Authorization] = []
        self._changed: dict[str, Authorization] = {}
        self._recorded: list[Recorded] = []
        self._response: StoredResponse | None = None

    async def replay(self) -> StoredResponse | None:
        return self._store.responses.get(self._scope)

    async def authorization(self, authorization_id: str) -> Authorization | None:
        found = self._store.authorizations.get(authorization_id)
        # A copy: a transaction that fails leaves the ledger as it was.
        return copy.copy(found) if found is not None else None

    def added(self, auth: Authorization) -> None:
        self._added.append(auth)

    def changed(self, auth: Authorization) -> None:
        self._changed[auth.id] = auth

    def record(self, recorded: Sequence[Recorded]) -> None:
        self._recorded.extend(recorded)

    def remember(self, response: StoredResponse) -> None:
        self._response = response

    def commit(self) -> None:
        store = self._store
        for auth in self._added:
            store.authorizations[auth.id] = auth
            store.order.append(auth.id)
        store.authorizations.update(self._changed)
        store.operations.extend(self._recorded)
        if self._response is not None:
            store.responses[self._scope] = self._response


class MemoryStore:
    """The ledger in this process's memory: gone when it stops."""

    def __init__(self) -> None:
        self.authorizations: dict[str, Authorization] = {}
        self.order: list[str] = []
        self.operations: list[Recorded] = []
        self.responses: dict[Scope, StoredResponse] = {}
        # One transaction at a time: a duplicate request waits for the first one,
        # then finds its answer to replay.
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def transaction(self, scope: Scope) -> AsyncIterator[LedgerTransaction]:
        async with self._lock:
            transaction = _MemoryTransaction(self, scope)
            yield transaction
            transaction.commit()

    async def get(self, authorization_id: str) -> Authorization | None:
        return self.authorizations.get(authorization_id)

    async def by_reference(self, reference: str) -> list[Authorization]:
        return [
            self.authorizations[i]
            for i in self.order
            if self.authorizations[i].reference == reference
        ]

    async def stats(self) -> dict[str, Any]:
        holds = Counter(
            self.authorizations[i].reference
            for i in self.order
            if self.authorizations[i].decline_code is None
        )
        return _stats(Counter(r.operation for r in self.operations), dict(holds))

    async def reset(self) -> None:
        async with self._lock:
            self.authorizations.clear()
            self.order.clear()
            self.operations.clear()
            self.responses.clear()

    async def close(self) -> None:
        pass


# -- in Postgres -------------------------------------------------------------------

_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.authorizations (
    id text PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    reference text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    token text NOT NULL,
    decline_code text,
    captured_amount bigint NOT NULL DEFAULT 0,
    refunded_amount bigint NOT NULL DEFAULT 0,
    released boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (captured_amount <= amount AND refunded_amount <= captured_amount)
);
CREATE INDEX IF NOT EXISTS authorizations_by_reference
    ON {SCHEMA}.authorizations (reference, seq);
CREATE TABLE IF NOT EXISTS {SCHEMA}.operations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operation text NOT NULL,
    authorization_id text,
    amount bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.idempotency_keys (
    path text NOT NULL,
    key text NOT NULL,
    fingerprint text NOT NULL,
    status integer NOT NULL,
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (path, key)
);
"""

_COLUMNS = (
    "id, reference, amount, currency, token, decline_code, captured_amount, "
    "refunded_amount, released"
)

# asyncpg's and the network's ways of saying the database is not there.
_UNREACHABLE = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def _authorization(row: asyncpg.Record) -> Authorization:
    return Authorization(
        id=row["id"],
        amount=row["amount"],
        currency=row["currency"],
        reference=row["reference"],
        token=row["token"],
        decline_code=row["decline_code"],
        captured_amount=row["captured_amount"],
        refunded_amount=row["refunded_amount"],
        released=row["released"],
    )


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )


class _PostgresTransaction:
    def __init__(self, connection: asyncpg.Connection, scope: Scope) -> None:
        self._connection = connection
        self._scope = scope
        self._added: list[Authorization] = []
        self._changed: dict[str, Authorization] = {}
        self._recorded: list[Recorded] = []
        self._response: StoredResponse | None = None

    async def replay(self) -> StoredResponse | None:
        row = await self._connection.fetchrow(
            f"SELECT fingerprint, status, body FROM {SCHEMA}.idempotency_keys "
            "WHERE path = $1 AND key = $2",
            *self._scope,
        )
        if row is None:
            return None
        return StoredResponse(row["fingerprint"], row["status"], row["body"])

    async def authorization(self, authorization_id: str) -> Authorization | None:
        row = await self._connection.fetchrow(
            f"SELECT {_COLUMNS} FROM {SCHEMA}.authorizations WHERE id = $1 FOR UPDATE",
            authorization_id,
        )
        return _authorization(row) if row is not None else None

    def added(self, auth: Authorization) -> None:
        self._added.append(auth)

    def changed(self, auth: Authorization) -> None:
        self._changed[auth.id] = auth

    def record(self, recorded: Sequence[Recorded]) -> None:
        self._recorded.extend(recorded)

    def remember(self, response: StoredResponse) -> None:
        self._response = response

    async def write(self) -> None:
        connection = self._connection
        if self._added:
            await connection.executemany(
                f"INSERT INTO {SCHEMA}.authorizations ({_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                [
                    (
                        a.id,
                        a.reference,
                        a.amount,
                        a.currency,
                        a.token,
                        a.decline_code,
                        a.captured_amount,
                        a.refunded_amount,
                        a.released,
                    )
                    for a in self._added
                ],
            )
        for auth in self._changed.values():
            await connection.execute(
                f"UPDATE {SCHEMA}.authorizations SET captured_amount = $2, "
                "refunded_amount = $3, released = $4 WHERE id = $1",
                auth.id,
                auth.captured_amount,
                auth.refunded_amount,
                auth.released,
            )
        if self._recorded:
            await connection.executemany(
                f"INSERT INTO {SCHEMA}.operations (operation, authorization_id, amount) "
                "VALUES ($1, $2, $3)",
                [
                    (str(r.operation), r.authorization_id, r.amount)
                    for r in self._recorded
                ],
            )
        if self._response is not None:
            await connection.execute(
                f"INSERT INTO {SCHEMA}.idempotency_keys "
                "(path, key, fingerprint, status, body) VALUES ($1, $2, $3, $4, $5)",
                *self._scope,
                self._response.fingerprint,
                self._response.status,
                self._response.body,
            )


class PostgresStore:
    """The ledger in Postgres, schema `gateway_simulator` (created on first use)."""

    def __init__(self, dsn: str, *, pool_size: int = 10, timeout: float = 10.0) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _ready(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                try:
                    pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=1,
                        max_size=self._pool_size,
                        timeout=self._timeout,
                        command_timeout=self._timeout,
                        init=_init_connection,
                        server_settings={"application_name": "gateway-simulator"},
                    )
                    async with pool.acquire() as connection, connection.transaction():
                        # Two simulators starting at once must not race on the DDL.
                        await connection.execute(
                            "SELECT pg_advisory_xact_lock(hashtext($1))", SCHEMA
                        )
                        await connection.execute(_DDL)
                except _UNREACHABLE as exc:
                    raise StoreUnavailable(f"ledger database: {exc!r}") from exc
                self._pool = pool
                logger.info("ledger kept in Postgres, schema %s", SCHEMA)
        return self._pool

    @contextlib.asynccontextmanager
    async def transaction(self, scope: Scope) -> AsyncIterator[LedgerTransaction]:
        pool = await self._ready()
        try:
            async with pool.acquire() as connection, connection.transaction():
                # The key first: a duplicate request waits here for the first one
                # to commit, then finds the answer to replay.
                await connection.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    f"{scope[0]}\n{scope[1]}",
                )
                transaction = _PostgresTransaction(connection, scope)
                yield transaction
                await transaction.write()
        except _UNREACHABLE as exc:
            raise StoreUnavailable(f"ledger database: {exc!r}") from exc

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        pool = await self._ready()
        try:
            rows: list[asyncpg.Record] = await pool.fetch(query, *args)
        except _UNREACHABLE as exc:
            raise StoreUnavailable(f"ledger database: {exc!r}") from exc
        return rows

    async def get(self, authorization_id: str) -> Authorization | None:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM {SCHEMA}.authorizations WHERE id = $1",
            authorization_id,
        )
        return _authorization(rows[0]) if rows else None

    async def by_reference(self, reference: str) -> list[Authorization]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM {SCHEMA}.authorizations "
            "WHERE reference = $1 ORDER BY seq",
            reference,
        )
        return [_authorization(row) for row in rows]

    async def stats(self) -> dict[str, Any]:
        operations = await self._fetch(
            f"SELECT operation, count(*) AS n FROM {SCHEMA}.operations GROUP BY operation"
        )
        holds = await self._fetch(
            f"SELECT reference, count(*) AS n FROM {SCHEMA}.authorizations "
            "WHERE decline_code IS NULL GROUP BY reference"
        )
        counts = Counter({row["operation"]: row["n"] for row in operations})
        return _stats(counts, {row["reference"]: row["n"] for row in holds})

    async def reset(self) -> None:
        pool = await self._ready()
        try:
            await pool.execute(
                f"TRUNCATE {SCHEMA}.authorizations, {SCHEMA}.operations, "
                f"{SCHEMA}.idempotency_keys"
            )
        except _UNREACHABLE as exc:
            raise StoreUnavailable(f"ledger database: {exc!r}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
