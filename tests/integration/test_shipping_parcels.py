"""Shipping's parcels on a real Postgres: one shipment per parcel, the messages of a
batch see the parcels an earlier one added (and, loaded up front for the batch, the
parcels and locks of its orders), a creation and a cancellation of the whole order
never miss each other, and the migration makes every shipment that existed its
order's only parcel."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import oms_shipping.db
from oms_contracts import Envelope
from oms_contracts import shipping as msgs
from oms_contracts.common import OrderLine, ShippingAddress
from oms_devtools import infra
from oms_runtime.db import libpq_url, sqlalchemy_url
from oms_runtime.messaging.unit_of_work import UnitOfWorkFactory
from oms_runtime.migrations import alembic_config, ensure_database
from oms_shipping.db.repository import _LOCK_SEED, load_shipments_for_batch
from oms_shipping.db.tables import messaging
from oms_shipping.db.unit_of_work import SqlShippingUnitOfWork
from oms_shipping.domain.model import Address, Line
from oms_shipping.handlers import messages
from oms_shipping.handlers.outgoing import ShipmentEvents
from oms_shipping.settings import ShippingSettings

pytestmark = pytest.mark.integration

HOME = ShippingAddress(
    name="Ada", line1="1 Main St", city="Berlin", postal_code="10115", country="DE"
)
ADDRESS = Address(**HOME.model_dump())
create_shipment = messages.create_shipment_handler(ShippingSettings())


@pytest.fixture
def units(engine: AsyncEngine) -> UnitOfWorkFactory[SqlShippingUnitOfWork]:
    return UnitOfWorkFactory(SqlShippingUnitOfWork, engine, messaging, None, ShipmentEvents())


def an_order() -> str:
    return str(uuid.uuid4())


def parcel_of(order_id: str, location: str) -> str:
    """A fulfillment id as the order service makes them: unique, one per location."""
    return f"{order_id}/{location}"


def create(order_id: str, location: str | None) -> msgs.CreateShipment:
    """The creation of the order's parcel at `location`; None: a message from before
    parcels (no fulfillment id)."""
    return msgs.CreateShipment(
        order_id=order_id,
        fulfillment_id=location and parcel_of(order_id, location),
        location=location or "default",
        lines=[OrderLine(sku="MUG", quantity=1)],
        shipping_address=HOME,
    )


def cancel_order(order_id: str) -> msgs.CancelShipment:
    return msgs.CancelShipment(order_id=order_id, reason="customer_request")


async def parcels(db: asyncpg.Connection, order_id: str) -> dict[str, tuple[str, str]]:
    rows = await db.fetch(
        "SELECT fulfillment_id, location, status FROM shipping.shipments WHERE order_id = $1",
        order_id,
    )
    return {
        row["fulfillment_id"].removeprefix(f"{order_id}/"): (row["location"], row["status"])
        for row in rows
    }


async def announced(db: asyncpg.Connection, order_id: str) -> list[tuple[str, Any, Any]]:
    """(routing key, fulfillment id, location) of what shipping wrote to its outbox."""
    rows = await db.fetch(
        "SELECT routing_key, body FROM shipping.outbox WHERE correlation_id = $1 ORDER BY id",
        order_id,
    )
    found = []
    for row in rows:
        data = json.loads(row["body"])["data"]
        fulfillment_id = data.get("fulfillment_id").removeprefix(f"{order_id}/")
        found.append((row["routing_key"], fulfillment_id, data.get("location")))
    return found


async def test_each_parcel_is_a_shipment_of_its_own_and_a_repeat_makes_none(
    units: UnitOfWorkFactory[SqlShippingUnitOfWork], db: asyncpg.Connection
) -> None:
    order_id = an_order()
    for command_ in (create(order_id, "north"), create(order_id, "south")):
        await create_shipment(command_, units())
    await create_shipment(create(order_id, "north"), units())

    assert await parcels(db, order_id) == {
        "north": ("north", "created"),
        "south": ("south", "created"),
    }
    assert await announced(db, order_id) == [
        ("shipping.shipment_created", "north", "north"),
        ("shipping.shipment_created", "south", "south"),
        ("shipping.shipment_created", "north", "north"),
    ]


async def test_in_one_batch_the_cancellation_of_the_order_finds_the_parcel_created_before_it(
    units: UnitOfWorkFactory[SqlShippingUnitOfWork], db: asyncpg.Connection
) -> None:
    order_id = an_order()
    creation, cancellation = create(order_id, "north"), cancel_order(order_id)
    envelopes = [Envelope.wrap(creation), Envelope.wrap(cancellation)]
    async with units.shared_transaction() as shared:
        assert await shared.claim(envelopes)
        await create_shipment(creation, units.for_message(envelopes[0], shared))
        await messages.cancel_shipment(cancellation, units.for_message(envelopes[1], shared))
        await shared.commit()

    assert await parcels(db, order_id) == {"north": ("north", "cancelled")}
    assert await announced(db, order_id) == [
        ("shipping.shipment_created", "north", "north"),
        ("shipping.shipment_cancelled", "north", "north"),
    ]


async def test_a_batch_loads_its_orders_parcels_and_locks_up_front_and_sees_its_own_additions(
    engine: AsyncEngine, db: asyncpg.Connection
) -> None:
    units = UnitOfWorkFactory(
        SqlShippingUnitOfWork, engine, messaging, load_shipments_for_batch, ShipmentEvents()
    )
    first, second = an_order(), an_order()
    await create_shipment(create(first, "north"), units())
    batch = [create(first, "south"), cancel_order(first), create(second, "north")]
    envelopes = [Envelope.wrap(command_) for command_ in batch]
    statements: list[str] = []

    def sent(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    async with units.shared_transaction() as shared:
        assert await shared.claim(envelopes)
        await units.load_batch(shared, envelopes)
        for order_id in (first, second):
            # Both orders are locked for the batch: nobody else changes their parcels.
            assert not await db.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, $2))", order_id, _LOCK_SEED
            )
        event.listen(engine.sync_engine, "before_cursor_execute", sent)
        try:
            await create_shipment(batch[0], units.for_message(envelopes[0], shared))
            await messages.cancel_shipment(batch[1], units.for_message(envelopes[1], shared))
            await create_shipment(batch[2], units.for_message(envelopes[2], shared))
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", sent)
        await shared.commit()

    # No statement per message: what they read, the loader had read.
    assert statements == []
    assert await parcels(db, first) == {
        "north": ("north", "cancelled"),
        "south": ("south", "cancelled"),
    }
    assert await parcels(db, second) == {"north": ("north", "created")}
    assert await announced(db, first) == [
        ("shipping.shipment_created", "north", "north"),
        ("shipping.shipment_created", "south", "south"),
        ("shipping.shipment_cancelled", "north", "north"),
        ("shipping.shipment_cancelled", "south", "south"),
    ]


async def waiting_for_an_advisory_lock(db: asyncpg.Connection, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not await db.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    ):
        if time.monotonic() > deadline:
            raise AssertionError("nobody waited for the order's lock")
        await asyncio.sleep(0.02)


async def test_a_cancellation_of_the_order_waits_for_a_parcel_being_created_and_cancels_it(
    units: UnitOfWorkFactory[SqlShippingUnitOfWork], db: asyncpg.Connection
) -> None:
    order_id = an_order()
    async with units() as creating:
        order = await creating.shipments.of_order(order_id)
        order.ask_for(
            fulfillment_id=parcel_of(order_id, "north"),
            location="north",
            lines=[Line("MUG", 1)],
            address=ADDRESS,
        )
        cancelling = asyncio.create_task(messages.cancel_shipment(cancel_order(order_id), units()))
        await waiting_for_an_advisory_lock(db)
        await creating.commit()
    await asyncio.wait_for(cancelling, 10)

    assert await parcels(db, order_id) == {"north": ("north", "cancelled")}
    assert [kind for kind, _, _ in await announced(db, order_id)] == [
        "shipping.shipment_created",
        "shipping.shipment_cancelled",
    ]


async def test_a_parcel_asked_for_while_the_order_is_being_cancelled_is_refused(
    units: UnitOfWorkFactory[SqlShippingUnitOfWork], db: asyncpg.Connection
) -> None:
    order_id = an_order()
    async with units() as cancelling:
        order = await cancelling.shipments.of_order(order_id)
        order.cancel(None)
        creating = asyncio.create_task(create_shipment(create(order_id, "north"), units()))
        await waiting_for_an_advisory_lock(db)
        await cancelling.commit()
    await asyncio.wait_for(creating, 10)

    assert await parcels(db, order_id) == {
        order_id: ("default", "cancelled"),
        "north": ("north", "cancelled"),
    }
    assert [kind for kind, _, _ in await announced(db, order_id)] == [
        "shipping.shipment_cancelled",
        "shipping.shipment_cancelled",
    ]


# -- the migration ---------------------------------------------------------------------


@pytest.fixture
async def database_before_parcels() -> AsyncIterator[str]:
    """A database of its own with shipping migrated to just before parcels."""
    url = f"postgresql://postgres@127.0.0.1:5432/oms_parcels_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    migrations = Path(oms_shipping.db.__file__).parent / "migrations"
    config = alembic_config(migrations, url)
    # Alembic runs its own event loop.
    await asyncio.to_thread(command.upgrade, config, "0004")
    yield url
    await infra.drop_database(url)


async def test_the_migration_makes_every_shipment_its_order_s_only_parcel(
    database_before_parcels: str,
) -> None:
    shipped, cancelled_early = an_order(), an_order()
    connection = await asyncpg.connect(libpq_url(database_before_parcels))
    try:
        await connection.execute(
            """INSERT INTO shipping.shipments (id, order_id, status, lines, address)
            VALUES ($1, $2, 'dispatched', '[{"sku": "MUG", "quantity": 1}]', '{}'),
                   ($3, $4, 'cancelled', '[]', NULL)""",
            uuid.uuid4(),
            shipped,
            uuid.uuid4(),
            cancelled_early,
        )
        migrations = Path(oms_shipping.db.__file__).parent / "migrations"
        await asyncio.to_thread(
            command.upgrade, alembic_config(migrations, database_before_parcels), "head"
        )
        rows = await connection.fetch(
            "SELECT order_id, fulfillment_id, location, order_cancelled FROM shipping.shipments"
        )
    finally:
        await connection.close()

    assert {row["order_id"]: tuple(row.values())[1:] for row in rows} == {
        shipped: (shipped, "default", False),
        cancelled_early: (cancelled_early, "default", True),
    }
    engine = create_async_engine(sqlalchemy_url(database_before_parcels))
    try:
        units = UnitOfWorkFactory(SqlShippingUnitOfWork, engine, messaging, None, ShipmentEvents())
        # A message from before parcels finds the order's only parcel: nothing new.
        await create_shipment(create(shipped, None), units())
        # The order cancelled before its shipment existed refuses any parcel of it.
        await create_shipment(create(cancelled_early, "north"), units())
        async with engine.connect() as check:
            after = await check.exec_driver_sql(
                "SELECT order_id, fulfillment_id, status FROM shipping.shipments"
            )
            assert sorted(map(tuple, after)) == sorted(
                [
                    (shipped, shipped, "dispatched"),
                    (cancelled_early, cancelled_early, "cancelled"),
                    (cancelled_early, parcel_of(cancelled_early, "north"), "cancelled"),
                ]
            )
    finally:
        await engine.dispose()
