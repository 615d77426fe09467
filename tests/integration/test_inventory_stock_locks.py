"""The inventory locks an order's stock rows in one global order, (sku, location),
whatever order the order names its SKUs in: that is what keeps concurrent orders
from deadlocking. Checked on real Postgres: with one row held elsewhere, a
reservation's lock statement has taken exactly the rows before it and none after."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from oms_inventory.db.tables import messaging
from oms_inventory.db.unit_of_work import SqlInventoryUnitOfWork
from oms_inventory.handlers.outgoing import InventoryEvents
from oms_runtime.db import libpq_url, sqlalchemy_url
from oms_runtime.messaging.unit_of_work import UnitOfWorkFactory

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(migrated_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(sqlalchemy_url(migrated_database))
    yield engine
    await engine.dispose()


async def locked_elsewhere(db: asyncpg.Connection, stock_id: int) -> bool:
    """Whether another transaction holds the row (tried without waiting)."""
    try:
        async with db.transaction():
            await db.execute(
                "SELECT 1 FROM inventory.stock WHERE id = $1 FOR UPDATE NOWAIT", stock_id
            )
    except asyncpg.LockNotAvailableError:
        return True
    return False


async def test_a_reservation_locks_stock_in_sku_then_location_order(
    engine: AsyncEngine, migrated_database: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    sites = [f"{tag}-{n}" for n in range(3)]
    skus = [f"{tag}-{name}" for name in ("A", "B", "C")]
    setup = await asyncpg.connect(libpq_url(migrated_database))
    blocker = await asyncpg.connect(libpq_url(migrated_database))
    probe = await asyncpg.connect(libpq_url(migrated_database))
    try:
        for site in sites:
            await setup.execute(
                "INSERT INTO inventory.locations (code, name) VALUES ($1, $1)", site
            )
        for sku in skus:
            await setup.execute(
                "INSERT INTO inventory.products (sku, name, unit_price, currency) "
                "VALUES ($1, $1, 100, 'EUR')",
                sku,
            )
            for site in sites:
                await setup.execute(
                    "INSERT INTO inventory.stock (sku, location, on_hand) VALUES ($1, $2, 5)",
                    sku,
                    site,
                )
        rows = {
            (row["sku"], row["location"]): row["id"]
            for row in await setup.fetch(
                "SELECT sku, location, id FROM inventory.stock WHERE sku = ANY($1::text[])", skus
            )
        }
        middle = (skus[1], sites[1])
        blocker_transaction = blocker.transaction()
        await blocker_transaction.start()
        await blocker.execute(
            "SELECT 1 FROM inventory.stock WHERE id = $1 FOR UPDATE", rows[middle]
        )
        factory = UnitOfWorkFactory(
            lambda *args, **kwargs: SqlInventoryUnitOfWork(
                *args, reservation_ttl=timedelta(days=1), **kwargs
            ),
            engine,
            messaging,
            events=InventoryEvents(),
        )

        async def lock_for_an_order() -> None:
            async with factory() as uow:
                # The order names its SKUs backwards.
                await uow.products.get_many(reversed(skus), for_update=True)

        locking = asyncio.create_task(lock_for_an_order())
        waiting = await setup.fetchval(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'"
        )
        for _ in range(200):
            if waiting:
                break
            await asyncio.sleep(0.05)
            waiting = await setup.fetchval(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'"
            )
        assert waiting, "the reservation never waited for the held row"

        held = {key: await locked_elsewhere(probe, stock_id) for key, stock_id in rows.items()}
        before = sorted(key for key in rows if key < middle)
        after = sorted(key for key in rows if key > middle)
        assert [key for key in before if not held[key]] == []
        assert [key for key in after if held[key]] == []

        await blocker_transaction.rollback()
        await asyncio.wait_for(locking, 10)
    finally:
        for connection in (blocker, probe):
            await connection.close()
        # Stock made by hand, without its ledger: it must not stay in the session's
        # database, whose books the e2e invariants check at the end.
        await setup.execute("DELETE FROM inventory.stock WHERE sku = ANY($1::text[])", skus)
        await setup.execute("DELETE FROM inventory.products WHERE sku = ANY($1::text[])", skus)
        await setup.execute("DELETE FROM inventory.locations WHERE code = ANY($1::text[])", sites)
        await setup.close()
