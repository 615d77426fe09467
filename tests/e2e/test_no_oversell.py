"""Many customers, little stock: never sell what is not there, never deadlock."""

from __future__ import annotations

import asyncio
import itertools

import asyncpg
import pytest

from oms_devtools.client import OmsClient, eventually
from oms_devtools.stack import Stack

pytestmark = pytest.mark.e2e


async def statuses(db: asyncpg.Connection, order_ids: list[str]) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT status, count(*) AS n FROM orders.orders WHERE id = ANY($1::uuid[]) "
        "GROUP BY status",
        order_ids,
    )
    return {row["status"]: row["n"] for row in rows}


async def place_all(oms: OmsClient, baskets: list[list[tuple[str, int]]]) -> list[str]:
    responses = await asyncio.gather(
        *(oms.place_order(basket, customer=f"rush-{i}") for i, basket in enumerate(baskets))
    )
    assert [r.status_code for r in responses] == [202] * len(baskets)
    return [r.json()["id"] for r in responses]


async def test_200_concurrent_orders_for_50_units_sell_exactly_50(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=50)
    order_ids = await place_all(oms, [[(product["sku"], 1)]] * 200)
    settled = await eventually(
        lambda: statuses(db, order_ids),
        lambda counts: counts.get("fulfilling", 0) + counts.get("rejected", 0) == 200,
        90,
        "every order to be reserved or rejected",
    )
    assert settled == {"fulfilling": 50, "rejected": 150}
    after = await oms.product(product["sku"])
    assert (after["on_hand"], after["reserved"], after["available"]) == (50, 50, 0)
    held = await db.fetchval(
        "SELECT sum((line->>'quantity')::int) FROM inventory.reservations r, "
        "jsonb_array_elements(r.lines) AS line "
        "WHERE line->>'sku' = $1 AND r.status = 'reserved'",
        product["sku"],
    )
    assert held == 50


async def test_orders_over_several_skus_in_different_orders_do_not_deadlock(
    oms: OmsClient, db: asyncpg.Connection, stack: Stack, migrated_database: str
) -> None:
    skus = [(await oms.create_product(on_hand=1000))["sku"] for _ in range(3)]
    database = migrated_database.rsplit("/", 1)[1]
    deadlocks_before = await db.fetchval(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = $1", database
    )
    # Every permutation of the three SKUs, many times over, all at once.
    baskets = [[(sku, 1) for sku in order] for order in itertools.permutations(skus)] * 10
    order_ids = await place_all(oms, baskets)
    await eventually(
        lambda: statuses(db, order_ids),
        lambda counts: counts.get("fulfilling", 0) == len(baskets),
        90,
        "every order to be reserved",
    )
    for sku in skus:
        product = await oms.product(sku)
        assert product["reserved"] == len(baskets)
    await asyncio.sleep(1.5)  # Postgres publishes its counters about once a second
    deadlocks_after = await db.fetchval(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = $1", database
    )
    assert deadlocks_after == deadlocks_before
    assert "deadlock detected" not in stack.logs("inventory")
