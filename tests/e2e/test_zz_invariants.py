"""Checked after every other end-to-end test (the file sorts last): whatever the
tests did to the orders, the books across the services still agree."""

from __future__ import annotations

import asyncpg
import pytest

from oms_devtools.client import OmsClient

pytestmark = pytest.mark.e2e

TERMINAL = ("completed", "rejected", "cancelled")


async def test_no_terminal_order_leaves_stock_reserved_or_money_held(
    oms: OmsClient, db: asyncpg.Connection
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
    assert terminal, "the suite should have finished some orders"
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
    for payment in payments:
        holds = (
            await oms.http.get(
                f"{oms.urls['gateway']}/v1/authorizations", params={"reference": payment["id"]}
            )
        ).json()["items"]
        assert [h["id"] for h in holds if h["status"] == "authorized"] == []


async def test_reserved_stock_equals_the_open_reservations(db: asyncpg.Connection) -> None:
    mismatched = await db.fetch("""
        SELECT p.sku, p.reserved, coalesce(sum(l.quantity), 0) AS held
        FROM inventory.products p
        LEFT JOIN (
            SELECT line->>'sku' AS sku, (line->>'quantity')::int AS quantity
            FROM inventory.reservations r, jsonb_array_elements(r.lines) AS line
            WHERE r.status = 'reserved') l ON l.sku = p.sku
        GROUP BY p.sku, p.reserved
        HAVING p.reserved <> coalesce(sum(l.quantity), 0)""")
    assert mismatched == []


async def test_every_products_stock_equals_its_ledger(db: asyncpg.Connection) -> None:
    rows = await db.fetch("""
        SELECT p.sku, p.on_hand, p.reserved,
               sum(m.on_hand_delta) AS ledger_on_hand,
               sum(m.reserved_delta) AS ledger_reserved,
               sum(m.on_hand_delta) FILTER (WHERE m.reason = 'initial') AS initial,
               coalesce(sum(m.on_hand_delta) FILTER (WHERE m.reason = 'restock'), 0) AS restocked,
               coalesce(sum(m.on_hand_delta) FILTER (WHERE m.reason = 'adjustment'), 0)
                   AS adjusted,
               coalesce(-sum(m.on_hand_delta) FILTER (WHERE m.reason = 'ship'), 0) AS shipped
        FROM inventory.products p JOIN inventory.stock_movements m USING (sku)
        GROUP BY p.sku, p.on_hand, p.reserved""")
    assert rows
    for row in rows:
        assert (row["on_hand"], row["reserved"]) == (
            row["ledger_on_hand"],
            row["ledger_reserved"],
        ), row["sku"]
        assert row["on_hand"] + row["shipped"] == (
            row["initial"] + row["restocked"] + row["adjusted"]
        ), row["sku"]


async def test_units_shipped_equal_the_committed_reservations(db: asyncpg.Connection) -> None:
    mismatched = await db.fetch("""
        WITH ledger AS (
            SELECT sku, -sum(on_hand_delta) AS shipped FROM inventory.stock_movements
            WHERE reason = 'ship' GROUP BY sku),
        committed AS (
            SELECT line->>'sku' AS sku, sum((line->>'quantity')::int) AS shipped
            FROM inventory.reservations r, jsonb_array_elements(r.lines) AS line
            WHERE r.status = 'committed' GROUP BY 1)
        SELECT * FROM ledger FULL JOIN committed USING (sku)
        WHERE ledger.shipped IS DISTINCT FROM committed.shipped""")
    assert mismatched == []


async def test_every_shipped_order_has_exactly_one_live_shipment(db: asyncpg.Connection) -> None:
    shipped = await db.fetch(
        "SELECT id::text FROM orders.orders WHERE status IN ('shipped', 'completed')"
    )
    counts = await db.fetch(
        "SELECT order_id, count(*) AS n FROM shipping.shipments "
        "WHERE order_id = ANY($1::text[]) AND status NOT IN ('cancelled', 'failed') "
        "GROUP BY order_id",
        [row["id"] for row in shipped],
    )
    assert {row["order_id"]: row["n"] for row in counts} == {row["id"]: 1 for row in shipped}
