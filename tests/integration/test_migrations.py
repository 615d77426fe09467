"""Each service's migrations produce exactly the tables its code declares."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import create_async_engine

from oms_inventory.db.tables import metadata as inventory_metadata
from oms_order.db.tables import metadata as order_metadata
from oms_payment.db.tables import metadata as payment_metadata
from oms_runtime.db import sqlalchemy_url
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
