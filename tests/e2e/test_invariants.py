"""Checked after every other end-to-end test (marked `run_last`): whatever the tests
did to the orders, the books across the services still agree. Run alone, they check
the orders this file finishes itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from oms_devtools.client import OmsClient
from oms_devtools.stack import Stack

from ..conftest import client_of
from .helpers import a_customer, fulfilling_order, shipped_order, stock_books_agree

pytestmark = [pytest.mark.e2e, pytest.mark.run_last]

TERMINAL = ("completed", "rejected", "cancelled")


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
    # An operator who forced a compensation took responsibility for it by hand.
    forced = {
        row["order_id"]
        for row in await db.fetch(
            "SELECT order_id::text FROM orders.order_history WHERE step = 'compensation_forced'"
        )
    }
    terminal = [
        row["id"]
        for row in await db.fetch(
            "SELECT id::text FROM orders.orders WHERE status = ANY($1::text[])", list(TERMINAL)
        )
        if row["id"] not in forced
    ]
    assert set(finished_orders) <= set(terminal)
    reserved = await db.fetch(
        "SELECT order_id FROM inventory.reservations "
        "WHERE status = 'reserved' AND order_id = ANY($1::text[])",
        terminal,
    )
    assert reserved == []
    authorized = await db.fetch(
        "SELECT order_id, id::text FROM payment.payments "
        "WHERE status = 'authorized' AND order_id = ANY($1::text[])",
        terminal,
    )
    assert authorized == []
    payments = await db.fetch(
        "SELECT id::text FROM payment.payments WHERE order_id = ANY($1::text[])", terminal
    )
    assert payments, "the finished orders include paid ones"
    for payment in payments:
        holds = await oms.gateway_holds(payment["id"])
        assert [h["id"] for h in holds if h["status"] == "authorized"] == []


async def test_reserved_stock_equals_the_open_reservations(
    db: asyncpg.Connection, finished_orders: list[str]
) -> None:
    # Per (SKU, location): what open reservations hold there and has not left yet.
    mismatched = await db.fetch("""
        SELECT s.sku, s.location, s.reserved, coalesce(sum(l.quantity), 0) AS held
        FROM inventory.stock s
        LEFT JOIN (
            SELECT line->>'sku' AS sku, line->>'location' AS location,
                   (line->>'quantity')::int AS quantity
            FROM inventory.reservations r, jsonb_array_elements(r.lines) AS line
            WHERE r.status = 'reserved' AND NOT (line->>'committed')::boolean) l
            ON l.sku = s.sku AND l.location = s.location
        GROUP BY s.sku, s.location, s.reserved
        HAVING s.reserved <> coalesce(sum(l.quantity), 0)""")
    assert mismatched == []


async def test_the_stock_at_every_location_equals_its_ledger(
    db: asyncpg.Connection, finished_orders: list[str]
) -> None:
    # Per (SKU, location): the counters equal the ledger's sums, and on_hand + shipped
    # = initial + restocked + adjusted + returned (resellable); damaged = returned
    # damaged.
    await stock_books_agree(db)
    # No movement names a (SKU, location) without a stock row.
    orphans = await db.fetch("""
        SELECT DISTINCT m.sku, m.location FROM inventory.stock_movements m
        WHERE NOT EXISTS (SELECT 1 FROM inventory.stock s
                          WHERE s.sku = m.sku AND s.location = m.location)""")
    assert orphans == []


async def test_units_shipped_equal_the_committed_reservations(
    db: asyncpg.Connection, finished_orders: list[str]
) -> None:
    # Per (SKU, location): a parcel that left is a committed line, whatever became
    # of the rest of its order.
    mismatched = await db.fetch("""
        WITH ledger AS (
            SELECT sku, location, -sum(on_hand_delta) AS shipped
            FROM inventory.stock_movements WHERE reason = 'ship' GROUP BY sku, location),
        committed AS (
            SELECT line->>'sku' AS sku, line->>'location' AS location,
                   sum((line->>'quantity')::int) AS shipped
            FROM inventory.reservations r, jsonb_array_elements(r.lines) AS line
            WHERE (line->>'committed')::boolean GROUP BY 1, 2)
        SELECT * FROM ledger FULL JOIN committed USING (sku, location)
        WHERE ledger.shipped IS DISTINCT FROM committed.shipped""")
    assert mismatched == []


async def test_every_parcel_that_left_has_exactly_one_live_shipment(
    db: asyncpg.Connection, finished_orders: list[str]
) -> None:
    # A shipped order's parcels that left are its live shipments; the others were
    # stopped (cancelled) or never made.
    shipped = await db.fetch("""
        SELECT id::text,
               (SELECT count(*) FROM jsonb_array_elements(fulfillments) AS parcel
                WHERE parcel->>'status' IN ('dispatched', 'delivered')) AS parcels
        FROM orders.orders WHERE status IN ('shipped', 'completed')""")
    counts = await db.fetch(
        "SELECT order_id, count(*) AS n FROM shipping.shipments "
        "WHERE order_id = ANY($1::text[]) AND status NOT IN ('cancelled', 'failed') "
        "GROUP BY order_id",
        [row["id"] for row in shipped],
    )
    assert {row["order_id"]: row["n"] for row in counts} == {
        row["id"]: row["parcels"] for row in shipped
    }
