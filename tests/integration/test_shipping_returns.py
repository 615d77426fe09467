"""Shipping's return parcels on a real Postgres: a label and the cancellation of its
return never miss each other (in one batch, or racing), a receipt and a cancellation
neither, what arrived is stored and announced, and deleting the order erases the
pickup addresses."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from oms_contracts import Envelope
from oms_contracts import order as order_msgs
from oms_contracts import shipping as msgs
from oms_contracts.common import ReturnLine, ShippingAddress
from oms_runtime.messaging.unit_of_work import UnitOfWorkFactory
from oms_shipping.db.tables import messaging
from oms_shipping.db.unit_of_work import SqlShippingUnitOfWork
from oms_shipping.domain.returns import Condition, ReceivedLine, ReturnParcel
from oms_shipping.handlers import returns as use_cases
from oms_shipping.handlers.messages import order_deleted
from oms_shipping.handlers.outgoing import ShipmentEvents

pytestmark = pytest.mark.integration

HOME = ShippingAddress(
    name="Ada", line1="1 Main St", city="Berlin", postal_code="10115", country="DE"
)


@pytest.fixture
def units(engine: AsyncEngine) -> UnitOfWorkFactory[SqlShippingUnitOfWork]:
    return UnitOfWorkFactory(SqlShippingUnitOfWork, engine, messaging, None, ShipmentEvents())


def a_return() -> tuple[str, str]:
    """(order id, return id) of the test's own."""
    return str(uuid.uuid4()), str(uuid.uuid4())


def label(order_id: str, return_id: str) -> msgs.CreateReturnLabel:
    return msgs.CreateReturnLabel(
        order_id=order_id,
        return_id=return_id,
        lines=[
            ReturnLine(sku="MUG", quantity=2, location="north"),
            ReturnLine(sku="TEA", quantity=1),
        ],
        shipping_address=HOME,
    )


def cancel(order_id: str, return_id: str) -> msgs.CancelReturn:
    return msgs.CancelReturn(order_id=order_id, return_id=return_id)


async def stored(db: asyncpg.Connection, return_id: str) -> dict[str, Any]:
    row = await db.fetchrow("SELECT * FROM shipping.returns WHERE id = $1", return_id)
    assert row is not None, f"no return {return_id}"
    found = dict(row)
    for column in ("lines", "received", "pickup_address"):
        found[column] = json.loads(found[column]) if found[column] is not None else None
    return found


async def announced(db: asyncpg.Connection, order_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(routing key, data) of what shipping wrote to its outbox about the order."""
    rows = await db.fetch(
        "SELECT routing_key, body FROM shipping.outbox WHERE correlation_id = $1 ORDER BY id",
        order_id,
    )
    return [(row["routing_key"], json.loads(row["body"])["data"]) for row in rows]


async def waiting_for_an_advisory_lock(db: asyncpg.Connection, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not await db.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ):
        if time.monotonic() > deadline:
            raise AssertionError("nobody waited for the return's lock")
        await asyncio.sleep(0.02)


async def test_a_label_is_stored_with_its_lines_and_address_and_asked_again_answers_the_same(
    units: UnitOfWorkFactory[SqlShippingUnitOfWork], db: asyncpg.Connection
) -> None:
    order_id, return_id = a_return()

    await use_cases.create_return_label(label(order_id, return_id), units())
    await use_cases.create_return_label(label(order_id, return_id), units())

    row = await stored(db, return_id)
    assert (row["order_id"], row["status"]) == (order_id, "label_created")
    assert row["lines"] == [
        {"sku": "MUG", "quantity": 2, "location": "north"},
        {"sku": "TEA", "quantity": 1, "location": "default"},
    ]
    assert row["pickup_address"]["line1"] == HOME.line1
    labels = await announced(db, order_id)
    assert [kind for kind, _ in labels] == ["shipping.return_label_created"] * 2
    assert {data["return_tracking_number"] for _, data in labels} == {row["return_tracking_number"]}


async def test_in_one_batch_the_cancellation_finds_the_return_labelled_before_it(
    units: UnitOfWorkFactory[SqlShippingUnitOfWork], db: asyncpg.Connection
) -> None:
    order_id, return_id = a_return()
    labelling, cancelling = label(order_id, return_id), cancel(order_id, return_id)
    envelopes = [Envelope.wrap(labelling), Envelope.wrap(cancelling)]
    async with units.shared_transaction() as shared:
        assert await shared.claim(envelopes)
        await use_cases.create_return_label(labelling, units.for_message(envelopes[0], shared))
        await use_cases.cancel_return(cancelling, units.for_message(envelopes[1], shared))
        await shared.commit()

    assert (await stored(db, return_id))["status"] == "cancelled"
    assert [kind for kind, _ in await announced(db, order_id)] == [
        "shipping.return_label_created",
        "shipping.return_cancelled",
    ]


async def test_a_label_asked_for_while_its_return_is_being_cancelled_is_refused(
    units: UnitOfWorkFactory[SqlShippingUnitOfWork], db: asyncpg.Connection
) -> None:
    order_id, return_id = a_return()
    async with units() as cancelling:
        assert await cancelling.returns.get(return_id, for_update=True) is None
        labelling = asyncio.create_task(
            use_cases.create_return_label(label(order_id, return_id), units())
        )
        await waiting_for_an_advisory_lock(db)
        cancelling.returns.add(
            ReturnParcel.cancelled_before_label(return_id=return_id, order_id=order_id)
        )
        await cancelling.commit()
    await asyncio.wait_for(labelling, 10)

    row = await stored(db, return_id)
    assert (row["status"], row["return_tracking_number"], row["pickup_address"]) == (
        "cancelled",
        None,
        None,
    )
    assert [kind for kind, _ in await announced(db, order_id)] == [
        "shipping.return_cancelled",
        "shipping.return_cancelled",
    ]


async def test_a_cancellation_arriving_while_the_parcel_is_received_answers_the_receipt(
    units: UnitOfWorkFactory[SqlShippingUnitOfWork], db: asyncpg.Connection
) -> None:
    order_id, return_id = a_return()
    await use_cases.create_return_label(label(order_id, return_id), units())
    async with units() as receiving:
        parcel = await receiving.returns.get(return_id, for_update=True)
        assert parcel is not None
        cancelling = asyncio.create_task(
            use_cases.cancel_return(cancel(order_id, return_id), units())
        )
        await waiting_for_an_advisory_lock(db)
        parcel.receive(
            [
                ReceivedLine("MUG", 1, Condition.RESELLABLE),
                ReceivedLine("TEA", 1, Condition.DAMAGED),
            ],
            datetime.now(UTC),
        )
        await receiving.commit()
    await asyncio.wait_for(cancelling, 10)

    row = await stored(db, return_id)
    assert row["status"] == "received"
    assert row["received_at"] is not None
    received = [
        {"sku": "MUG", "quantity": 1, "condition": "resellable"},
        {"sku": "TEA", "quantity": 1, "condition": "damaged"},
    ]
    assert row["received"] == received
    assert [(kind, data.get("lines")) for kind, data in await announced(db, order_id)] == [
        ("shipping.return_label_created", None),
        ("shipping.return_received", received),
        ("shipping.return_received", received),
    ]


async def test_deleting_the_order_erases_the_pickup_addresses_of_its_returns(
    units: UnitOfWorkFactory[SqlShippingUnitOfWork], db: asyncpg.Connection
) -> None:
    order_id, first = a_return()
    second = str(uuid.uuid4())
    other_order, other_return = a_return()
    for command in (label(order_id, first), label(order_id, second)):
        await use_cases.create_return_label(command, units())
    await use_cases.create_return_label(label(other_order, other_return), units())

    await order_deleted(order_msgs.OrderDeleted(order_id=order_id), units())

    assert [(await stored(db, rid))["pickup_address"] for rid in (first, second)] == [None, None]
    assert (await stored(db, other_return))["pickup_address"]["line1"] == HOME.line1
    assert (await stored(db, first))["lines"][0]["sku"] == "MUG"
