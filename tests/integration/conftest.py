"""Fixtures for the plumbing tests: a schema with outbox/inbox, a private vhost."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from oms_devtools import infra
from oms_runtime.db import sqlalchemy_url
from oms_runtime.messaging.broker import Broker
from oms_runtime.messaging.tables import MessagingTables, define_messaging_tables

SCHEMA = "plumbing_test"
metadata = MetaData(schema=SCHEMA)
TABLES = define_messaging_tables(metadata)
# What the test handlers write, so a test can count side effects.
effects = Table(
    "effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("note", Text, nullable=False),
)


@pytest.fixture(scope="session")
def plumbing_amqp_url(test_amqp_url: str) -> Iterator[str]:
    vhost = f"oms_plumbing_{uuid.uuid4().hex[:8]}"
    infra.create_vhost(vhost)
    yield test_amqp_url.rsplit("/", 1)[0] + f"/{vhost}"
    infra.delete_vhost(vhost)


@pytest.fixture(scope="session")
async def engine(migrated_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(sqlalchemy_url(migrated_database))
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def clean_tables(engine: AsyncEngine) -> MessagingTables:
    async with engine.begin() as conn:
        for table in (TABLES.outbox, TABLES.inbox, effects):
            await conn.execute(table.delete())
    return TABLES


@pytest.fixture
async def broker(plumbing_amqp_url: str) -> AsyncIterator[Broker]:
    broker = Broker(plumbing_amqp_url, "plumbing-test")
    await broker.connect()
    yield broker
    await broker.close()
