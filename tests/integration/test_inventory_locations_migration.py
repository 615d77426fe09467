"""The inventory migration that introduced stock locations, run on a database holding
the data of a single-warehouse shop: everything lands at `default` and keeps
adding up, and the service's code reads and changes it as before."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

import oms_inventory
from oms_contracts import inventory as msgs
from oms_contracts.common import OrderLine
from oms_devtools import infra
from oms_inventory.db.tables import messaging
from oms_inventory.db.unit_of_work import SqlInventoryUnitOfWork
from oms_inventory.handlers import messages
from oms_inventory.handlers.outgoing import InventoryEvents
from oms_runtime.db import libpq_url, sqlalchemy_url
from oms_runtime.messaging.unit_of_work import UnitOfWorkFactory
from oms_runtime.migrations import alembic_config

pytestmark = pytest.mark.integration

MIGRATIONS = Path(oms_inventory.__file__).parent / "db" / "migrations"
BEFORE_LOCATIONS = "0005"


@pytest.fixture
async def database() -> AsyncIterator[str]:
    base = os.environ.get("OMS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")
    url = f"{base.rstrip('/')}/oms_locations_{uuid.uuid4().hex[:8]}"
    await infra.recreate_database(url)
    try:
        yield url
    finally:
        await infra.drop_database(url)


async def migrate(url: str, revision: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(MIGRATIONS, url), revision)


async def a_shop_before_locations(db: asyncpg.Connection) -> None:
    """Two products, an open and a shipped order, a ledger, an open replenishment
    request and a counted delivery, as the service wrote them before locations."""
    await db.execute("""
        INSERT INTO inventory.products
            (sku, name, unit_price, currency, on_hand, reserved, low_stock_threshold,
             reorder_quantity, low_stock_alerted)
        VALUES ('MUG', 'Mug', 500, 'EUR', 8, 3, 5, 20, true),
               ('TEA', 'Tea', 300, 'EUR', 14, 0, 2, 0, false)""")
    await db.execute("""
        INSERT INTO inventory.stock_movements (sku, reason, on_hand_delta, reserved_delta,
                                               order_id)
        VALUES ('MUG', 'initial', 10, 0, NULL), ('MUG', 'reserve', 0, 2, 'o-shipped'),
               ('MUG', 'ship', -2, -2, 'o-shipped'), ('MUG', 'reserve', 0, 3, 'o-open'),
               ('TEA', 'initial', 4, 0, NULL), ('TEA', 'restock', 10, 0, NULL)""")
    lines = [{"sku": "MUG", "quantity": 3, "unit_price": 500}]
    shipped = [{"sku": "MUG", "quantity": 2, "unit_price": 500}]
    await db.execute(
        """
        INSERT INTO inventory.reservations (order_id, status, lines, currency, expires_at)
        VALUES ('o-open', 'reserved', $1::jsonb, 'EUR', $3),
               ('o-shipped', 'committed', $2::jsonb, 'EUR', $3),
               ('o-refused', 'refused', '[]', NULL, NULL)""",
        json.dumps(lines),
        json.dumps(shipped),
        datetime.now(UTC) + timedelta(days=7),
    )
    await db.execute("""
        INSERT INTO inventory.replenishments (sku, quantity, available_at_request)
        VALUES ('MUG', 20, 5)""")
    await db.execute("""
        INSERT INTO inventory.restock_receipts (sku, reference, quantity)
        VALUES ('TEA', 'DN-1', 10)""")


async def test_todays_stock_moves_to_the_default_location_unchanged(database: str) -> None:
    await migrate(database, BEFORE_LOCATIONS)
    db = await asyncpg.connect(libpq_url(database))
    try:
        await a_shop_before_locations(db)
        await migrate(database, "head")

        locations = await db.fetch(
            "SELECT code, country, priority, serves FROM inventory.locations"
        )
        assert [tuple(row) for row in locations] == [("default", None, 100, None)]
        stock = await db.fetch("""
            SELECT sku, location, on_hand, reserved, low_stock_alerted FROM inventory.stock
            ORDER BY sku""")
        assert [tuple(row) for row in stock] == [
            ("MUG", "default", 8, 3, True),
            ("TEA", "default", 14, 0, False),
        ]
        # The ledger per (SKU, location) still adds up to the stock.
        ledger = await db.fetch("""
            SELECT s.sku, s.on_hand, s.reserved, sum(m.on_hand_delta) AS moved_on_hand,
                   sum(m.reserved_delta) AS moved_reserved
            FROM inventory.stock s JOIN inventory.stock_movements m
                ON m.sku = s.sku AND m.location = s.location
            GROUP BY s.sku, s.location, s.on_hand, s.reserved""")
        assert len(ledger) == 2
        for row in ledger:
            assert (row["on_hand"], row["reserved"]) == (
                row["moved_on_hand"],
                row["moved_reserved"],
            ), row["sku"]
        reservations = {
            row["order_id"]: (row["status"], json.loads(row["lines"]), json.loads(row["locations"]))
            for row in await db.fetch(
                "SELECT order_id, status, lines, locations FROM inventory.reservations"
            )
        }
        default = [{"code": "default", "country": None, "priority": 100, "serves": None}]
        assert reservations["o-open"] == (
            "reserved",
            [
                {
                    "sku": "MUG",
                    "quantity": 3,
                    "unit_price": 500,
                    "location": "default",
                    "committed": False,
                }
            ],
            default,
        )
        assert reservations["o-shipped"][1][0]["committed"] is True
        assert reservations["o-refused"] == ("refused", [], [])
        replenishment = await db.fetchrow(
            "SELECT sku, location, status FROM inventory.replenishments"
        )
        assert tuple(replenishment) == ("MUG", "default", "open")
        receipt = await db.fetchrow(
            "SELECT sku, reference, location FROM inventory.restock_receipts"
        )
        assert tuple(receipt) == ("TEA", "DN-1", "default")
        # Where no location was named before, none is assumed now: writers say which.
        assert (
            await db.fetchval("""
            SELECT count(*) FROM information_schema.columns
            WHERE table_schema = 'inventory' AND column_name = 'location'
              AND column_default IS NOT NULL""")
            == 0
        )
    finally:
        await db.close()


async def test_the_service_works_on_the_migrated_data_as_before(database: str) -> None:
    """An open order from before the migration is committed and another reserved,
    through the service's own unit of work and handlers."""
    await migrate(database, BEFORE_LOCATIONS)
    db = await asyncpg.connect(libpq_url(database))
    engine = create_async_engine(sqlalchemy_url(database))
    try:
        await a_shop_before_locations(db)
        await migrate(database, "head")
        factory = UnitOfWorkFactory(
            lambda *args, **kwargs: SqlInventoryUnitOfWork(
                *args, reservation_ttl=timedelta(days=7), **kwargs
            ),
            engine,
            messaging,
            events=InventoryEvents(),
        )

        await messages.commit_stock(msgs.CommitStock(order_id="o-open"), factory())
        await messages.reserve_stock(
            msgs.ReserveStock(
                order_id="o-new", lines=[OrderLine(sku="TEA", quantity=4)], country="DE"
            ),
            factory(),
        )

        stock = await db.fetch(
            "SELECT sku, on_hand, reserved FROM inventory.stock WHERE location = 'default' "
            "ORDER BY sku"
        )
        assert [tuple(row) for row in stock] == [("MUG", 5, 0), ("TEA", 14, 4)]
        sent = [
            (row["routing_key"], json.loads(row["body"])["data"])
            for row in await db.fetch("SELECT routing_key, body FROM inventory.outbox ORDER BY id")
        ]
        committed = [data for key, data in sent if key == "inventory.stock_committed"]
        assert committed[0]["lines"] == [{"sku": "MUG", "quantity": 3}]
        reserved = [data for key, data in sent if key == "inventory.stock_reserved"]
        assert reserved[0]["allocations"] == [
            {"location": "default", "lines": [{"sku": "TEA", "quantity": 4}], "serves": None}
        ]
    finally:
        await engine.dispose()
        await db.close()
