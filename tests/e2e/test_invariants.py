"""Whatever the tests did to the orders, the books across the services agree once the
system settles. tests/e2e/conftest.py checks the same (tests/e2e/run_checks.py) when
each process's session ends; here they are checked with orders of each ending this
file finishes itself, so they never agree merely because the books are empty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from oms_devtools.client import OmsClient
from oms_devtools.stack import Stack

from ..conftest import client_of
from .helpers import a_customer, fulfilling_order, shipped_order
from .run_checks import (
    agree_once_settled,
    held_for_ended_orders,
    live_shipment_disagreements,
    reserved_stock_disagreements,
    shipped_unit_disagreements,
    stock_ledger_disagreements,
    terminal_orders,
)

pytestmark = pytest.mark.e2e

# Other tests of this process may still have messages in flight.
SETTLE_SECONDS = 20


@pytest.fixture(scope="module")
async def finished_orders(stack: Stack) -> AsyncIterator[list[str]]:
    """An order of each ending (delivered, refused for want of stock, cancelled with
    its payment voided), so the books never agree merely because they are empty."""
    oms = client_of(stack, a_customer("books"))

    async def completed() -> str:
        product = await oms.create_product(on_hand=2)
        order_id, shipment_id = await shipped_order(oms, [(product["sku"], 1)])
        delivered = await oms.tracking_event(
            shipment_id, "delivered", datetime.now(UTC).isoformat()
        )
        assert delivered.status_code == 202
        await oms.wait_for_order(order_id, "completed")
        return order_id

    async def rejected() -> str:
        product = await oms.create_product(on_hand=0)
        order_id = (await oms.place([(product["sku"], 1)]))["id"]
        await oms.wait_for_order(order_id, "rejected")
        return order_id

    async def cancelled() -> str:
        product = await oms.create_product(on_hand=2)
        order_id, _ = await fulfilling_order(oms, [(product["sku"], 1)])
        assert (await oms.cancel(order_id)).status_code == 202
        await oms.wait_for_order(order_id, "cancelled")
        return order_id

    try:
        yield list(await asyncio.gather(completed(), rejected(), cancelled()))
    finally:
        await oms.aclose()


async def test_no_terminal_order_leaves_stock_reserved_or_money_held(
    oms: OmsClient, db: asyncpg.Connection, finished_orders: list[str]
) -> None:
    assert set(finished_orders) <= set(await terminal_orders(db))
    paid = await db.fetchval(
        "SELECT count(*) FROM payment.payments WHERE order_id = ANY($1::text[])", finished_orders
    )
    assert paid, "the finished orders include paid ones"
    await agree_once_settled(
        lambda: held_for_ended_orders(db, oms),
        "nothing held for an order that ended",
        SETTLE_SECONDS,
    )


async def test_reserved_stock_equals_the_open_reservations(
    db: asyncpg.Connection, finished_orders: list[str]
) -> None:
    await agree_once_settled(
        lambda: reserved_stock_disagreements(db),
        "reserved stock = open reservations",
        SETTLE_SECONDS,
    )


async def test_the_stock_at_every_location_equals_its_ledger(
    db: asyncpg.Connection, finished_orders: list[str]
) -> None:
    await agree_once_settled(
        lambda: stock_ledger_disagreements(db), "stock = its ledger", SETTLE_SECONDS
    )


async def test_units_shipped_equal_the_committed_reservations(
    db: asyncpg.Connection, finished_orders: list[str]
) -> None:
    await agree_once_settled(
        lambda: shipped_unit_disagreements(db),
        "units shipped = committed reservations",
        SETTLE_SECONDS,
    )


async def test_every_parcel_that_left_has_exactly_one_live_shipment(
    db: asyncpg.Connection, finished_orders: list[str]
) -> None:
    await agree_once_settled(
        lambda: live_shipment_disagreements(db),
        "one live shipment per parcel that left",
        SETTLE_SECONDS,
    )


async def test_the_books_check_reports_stock_that_drifted_from_its_ledger(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=4)
    sku = product["sku"]
    drift = "UPDATE inventory.stock SET on_hand = on_hand + $2 WHERE sku = $1"
    await db.execute(drift, sku, 1)
    try:
        found = await stock_ledger_disagreements(db)
    finally:
        await db.execute(drift, sku, -1)
    assert [line for line in found if sku in line] == [
        f"{sku} at default: on hand/reserved/damaged (5, 0, 0), ledger (4, 0, 0)",
        f"{sku} at default: on hand + shipped != 4 that came in",
    ]
    assert [line for line in await stock_ledger_disagreements(db) if sku in line] == []
