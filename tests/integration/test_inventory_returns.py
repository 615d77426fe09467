"""Inventory's booking of returned goods on a real Postgres: the stock rows, the
ledger, the booked return and the answer in the outbox; and a return booked once
when two copies of its command race in two transactions, or meet in one batch."""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from oms_contracts import Envelope
from oms_contracts import inventory as msgs
from oms_contracts.common import ReturnCondition, ReturnedLine
from oms_inventory.db.repository import load_stock_for_batch
from oms_inventory.db.tables import messaging
from oms_inventory.db.unit_of_work import SqlInventoryUnitOfWork
from oms_inventory.domain.allocation import Location
from oms_inventory.handlers import messages
from oms_inventory.handlers import products as use_cases
from oms_inventory.handlers.outgoing import InventoryEvents
from oms_runtime.db import libpq_url
from oms_runtime.messaging.unit_of_work import UnitOfWorkFactory

pytestmark = pytest.mark.integration

Units = UnitOfWorkFactory[SqlInventoryUnitOfWork]


@pytest.fixture
def units(engine: AsyncEngine) -> Units:
    return UnitOfWorkFactory(
        functools.partial(SqlInventoryUnitOfWork, reservation_ttl=timedelta(days=1)),
        engine,
        messaging,
        load_stock_for_batch,
        InventoryEvents(),
    )


async def a_location(units: Units) -> str:
    code = f"RET-{uuid.uuid4().hex[:6]}"
    await use_cases.create_location(Location(code, "DE"), code, units())
    return code


async def a_product(units: Units, **stock: int) -> str:
    """Made as staff make them, so its ledger opens with its initial stock."""
    sku = f"RET-{uuid.uuid4().hex[:8]}"
    await use_cases.create_product(use_cases.NewProduct(sku, sku, 500, "EUR", stock), units())
    return sku


def return_stock(return_id: str, *lines: tuple[str, int, str, ReturnCondition]) -> msgs.ReturnStock:
    return msgs.ReturnStock(
        order_id=str(uuid.uuid4()),
        return_id=return_id,
        lines=[
            ReturnedLine(sku=sku, quantity=quantity, location=location, condition=condition)
            for sku, quantity, location, condition in lines
        ],
    )


async def stock_of(db: asyncpg.Connection, sku: str) -> dict[str, tuple[int, int, int]]:
    """(on_hand, reserved, damaged) per location."""
    rows = await db.fetch(
        "SELECT location, on_hand, reserved, damaged FROM inventory.stock WHERE sku = $1", sku
    )
    return {row["location"]: (row["on_hand"], row["reserved"], row["damaged"]) for row in rows}


async def answers(db: asyncpg.Connection, return_id: str) -> list[dict[str, Any]]:
    """The `inventory.stock_returned` messages written for the return, oldest first."""
    rows = await db.fetch(
        "SELECT body FROM inventory.outbox WHERE routing_key = 'inventory.stock_returned' "
        "ORDER BY id"
    )
    found = [json.loads(row["body"]) for row in rows]
    return [
        {"correlation_id": body["correlation_id"], **body["data"]}
        for body in found
        if body["data"]["return_id"] == return_id
    ]


async def test_a_return_is_booked_with_its_ledger_its_record_and_its_answer(
    units: Units, db: asyncpg.Connection
) -> None:
    shelf, elsewhere = await a_location(units), await a_location(units)
    sku = await a_product(units, **{shelf: 4})
    return_id = str(uuid.uuid4())
    command = return_stock(
        return_id,
        (sku, 2, shelf, "resellable"),
        (sku, 1, shelf, "damaged"),
        (sku, 1, elsewhere, "damaged"),
    )

    await messages.return_stock(command, units())

    # A location the product was never stocked at has a stock row now.
    assert await stock_of(db, sku) == {shelf: (6, 0, 1), elsewhere: (0, 0, 1)}
    movements = await db.fetch(
        "SELECT location, reason, on_hand_delta, reserved_delta, damaged_delta, order_id, note "
        "FROM inventory.stock_movements WHERE sku = $1 ORDER BY id",
        sku,
    )
    assert [tuple(row.values()) for row in movements] == [
        (shelf, "initial", 4, 0, 0, None, None),
        (shelf, "return", 2, 0, 0, command.order_id, return_id),
        (shelf, "return_damaged", 0, 0, 1, command.order_id, return_id),
        (elsewhere, "return_damaged", 0, 0, 1, command.order_id, return_id),
    ]
    booked = await db.fetchrow(
        "SELECT order_id, lines FROM inventory.stock_returns WHERE return_id = $1", return_id
    )
    assert booked is not None and booked["order_id"] == command.order_id
    assert json.loads(booked["lines"]) == [
        {"sku": sku, "quantity": 2, "condition": "resellable", "location": shelf},
        {"sku": sku, "quantity": 1, "condition": "damaged", "location": shelf},
        {"sku": sku, "quantity": 1, "condition": "damaged", "location": elsewhere},
    ]
    assert await answers(db, return_id) == [
        {
            "correlation_id": command.order_id,
            **command.model_dump(mode="json"),
        }
    ]


_WAITING_BEHIND = """
    WITH behind_it AS (
        SELECT pid FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid)))
    SELECT count(*) FROM pg_stat_activity
    WHERE pid IN (SELECT pid FROM behind_it)
       OR pg_blocking_pids(pid) && ARRAY(SELECT pid FROM behind_it)"""


async def waiting_behind(
    db: asyncpg.Connection, holder: int, count: int, timeout: float = 10
) -> None:
    """Until `count` sessions wait behind the session `holder` (the first one for
    its transaction, the next ones for the first, queued for the same row)."""
    deadline = time.monotonic() + timeout
    while await db.fetchval(_WAITING_BEHIND, holder) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} transactions waited for the stock")
        await asyncio.sleep(0.02)


async def test_two_copies_of_a_return_racing_in_two_transactions_book_it_once(
    units: Units, db: asyncpg.Connection, migrated_database: str
) -> None:
    shelf = await a_location(units)
    sku = await a_product(units, **{shelf: 4})
    return_id = str(uuid.uuid4())
    command = return_stock(return_id, (sku, 3, shelf, "resellable"))
    blocker = await asyncpg.connect(libpq_url(migrated_database))
    try:
        # Someone else holds the stock row, so both copies start and wait together.
        holding = blocker.transaction()
        await holding.start()
        await blocker.execute("SELECT 1 FROM inventory.stock WHERE sku = $1 FOR UPDATE", sku)
        racing = [asyncio.create_task(messages.return_stock(command, units())) for _ in range(2)]
        await waiting_behind(db, blocker.get_server_pid(), 2)
        await holding.rollback()
        await asyncio.wait_for(asyncio.gather(*racing), 10)
    finally:
        await blocker.close()

    assert await stock_of(db, sku) == {shelf: (7, 0, 0)}
    returns = await db.fetchval(
        "SELECT count(*) FROM inventory.stock_movements WHERE sku = $1 AND reason = 'return'", sku
    )
    assert returns == 1
    first, second = await answers(db, return_id)
    assert first == second


async def test_two_copies_of_a_return_in_one_batch_book_it_once(
    units: Units, db: asyncpg.Connection
) -> None:
    shelf = await a_location(units)
    sku = await a_product(units, **{shelf: 4})
    return_id = str(uuid.uuid4())
    command = return_stock(return_id, (sku, 2, shelf, "resellable"), (sku, 1, shelf, "damaged"))
    # Two messages (two ids): the command re-sent, say.
    envelopes = [Envelope.wrap(command), Envelope.wrap(command)]

    async with units.shared_transaction() as shared:
        assert await shared.claim(envelopes)
        await units.load_batch(shared, envelopes)
        for envelope in envelopes:
            await messages.return_stock(command, units.for_message(envelope, shared))
        await shared.commit()

    assert await stock_of(db, sku) == {shelf: (6, 0, 1)}
    assert (
        await db.fetchval(
            "SELECT count(*) FROM inventory.stock_returns WHERE return_id = $1", return_id
        )
        == 1
    )
    first, second = await answers(db, return_id)
    assert first == second
