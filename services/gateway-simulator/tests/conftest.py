"""The ledger stores the simulator's tests run against: in memory, and in a
throwaway Postgres database (tests with it are marked `integration`)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import pytest

from oms_gateway_simulator.store import LedgerStore, MemoryStore, PostgresStore

SERVER = os.environ.get("OMS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")


def _admin(statement: str) -> None:
    """Run `statement` on the server's `postgres` database, on a loop of its own (a
    fixture may be set up while the tests' loop is running)."""

    async def run() -> None:
        connection = await asyncpg.connect(f"{SERVER.rstrip('/')}/postgres")
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def ledger_database() -> Iterator[str]:
    """A database of its own for the simulator's Postgres ledger, dropped at the end."""
    name = f"oms_gateway_test_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    yield f"{SERVER.rstrip('/')}/{name}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(
    params=["memory", pytest.param("postgres", marks=pytest.mark.integration)]
)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[LedgerStore]:
    """Every behaviour holds whichever store keeps the ledger."""
    if request.param == "memory":
        yield MemoryStore()
        return
    durable = PostgresStore(request.getfixturevalue("ledger_database"))
    await durable.reset()  # each test starts from an empty ledger
    yield durable
    await durable.close()
