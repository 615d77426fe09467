"""Each service's migrations produce exactly the tables its code declares."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import create_async_engine

import oms_order
from oms_devtools import infra
from oms_inventory.db.tables import metadata as inventory_metadata
from oms_order.db.tables import metadata as order_metadata
from oms_payment.db.tables import metadata as payment_metadata
from oms_runtime.db import libpq_url, sqlalchemy_url
from oms_runtime.migrations import alembic_config
from oms_shipping.db.tables import metadata as shipping_metadata

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "metadata",
    [order_metadata, inventory_metadata, payment_metadata, shipping_metadata],
    ids=["order", "inventory", "payment", "shipping"],
)
async def test_migrations_match_the_table_definitions(
    migrated_database: str, metadata: MetaData
) -> None:
    engine = create_async_engine(sqlalchemy_url(migrated_database))

    def differences(connection: object) -> list[object]:
        context = MigrationContext.configure(
            connection,  # type: ignore[arg-type]
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, parent: (
                    type_ != "schema" or name == metadata.schema
                ),
                "version_table_schema": metadata.schema,
            },
        )
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        diff = await conn.run_sync(differences)
    await engine.dispose()
    assert not diff, "\n".join(map(str, diff))


async def test_existing_orders_get_the_one_parcel_they_had() -> None:
    """Orders placed before stock locations keep their shipment, tracking number and
    settlement as one parcel from the default location, named by the order's id."""
    database = f"postgresql://postgres@127.0.0.1:5432/oms_parcels_{uuid.uuid4().hex[:8]}"
    await infra.recreate_database(database)
    try:
        migrations = Path(oms_order.__file__).parent / "db" / "migrations"
        config = alembic_config(migrations, database)
        await asyncio.to_thread(command.upgrade, config, "0009")
        connection = await asyncpg.connect(libpq_url(database))
        try:
            shipped, paid = uuid.uuid4(), uuid.uuid4()
            for order_id, status, extra in (
                (
                    shipped,
                    "shipped",
                    ", shipment_id = 's-1', carrier = 'simpost', "
                    "tracking_number = 'SIM1', stock_committed = true, captured_amount = 1000",
                ),
                (paid, "paid", ""),
            ):
                await connection.execute(
                    "INSERT INTO orders.orders (id, customer_id, status, shipping_address, "
                    "lines, payment_token, created_at) VALUES ($1, 'alice', $2, '{}', "
                    '\'[{"sku": "MUG", "quantity": 2, "unit_price": 500}]\', \'tok\', now())',
                    order_id,
                    status,
                )
                if extra:
                    await connection.execute(
                        f"UPDATE orders.orders SET {extra.lstrip(', ')} WHERE id = $1", order_id
                    )
            await asyncio.to_thread(command.upgrade, config, "head")
            rows = {
                row["id"]: json.loads(row["fulfillments"])
                for row in await connection.fetch("SELECT id, fulfillments FROM orders.orders")
            }
        finally:
            await connection.close()
    finally:
        await infra.drop_database(database)
    (was_shipped,) = rows[shipped]
    assert was_shipped["id"] == str(shipped)
    assert (was_shipped["location"], was_shipped["status"]) == ("default", "dispatched")
    assert (was_shipped["shipment_id"], was_shipped["tracking_number"]) == ("s-1", "SIM1")
    assert (was_shipped["stock_committed"], was_shipped["captured_amount"]) == (True, 1000)
    assert was_shipped["lines"] == [["MUG", 2]]
    (was_paid,) = rows[paid]
    assert (was_paid["status"], was_paid["shipment_id"]) == ("pending", None)
