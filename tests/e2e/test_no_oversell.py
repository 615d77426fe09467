"""Many customers, little stock: never sell what is not there, never deadlock."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

import asyncpg
import pytest

from oms_devtools.client import OmsClient, eventually
from oms_devtools.stack import Stack

from .helpers import a_customer, statuses

pytestmark = pytest.mark.e2e


async def place_all(oms: OmsClient, baskets: list[list[tuple[str, int]]]) -> list[str]:
    """Every basket at once, each by a customer of its own (the rate limit is per
    customer)."""
    responses = await asyncio.gather(
        *(oms.place_order(basket, customer=a_customer("rush")) for basket in baskets)
    )
    assert [r.status_code for r in responses] == [202] * len(baskets)
    return [r.json()["id"] for r in responses]


async def test_200_concurrent_orders_for_50_units_sell_exactly_50(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=50)
    order_ids = await place_all(oms, [[(product["sku"], 1)]] * 200)
    settled = await eventually(
        lambda: status_counts(db, order_ids),
        lambda counts: counts["fulfilling"] + counts["rejected"] == 200,
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
    oms: OmsClient, db: asyncpg.Connection, stack: Stack
) -> None:
    skus = [(await oms.create_product(on_hand=1000))["sku"] for _ in range(3)]
    # Every permutation of the three SKUs, many times over, all at once.
    baskets = [[(sku, 1) for sku in order] for order in itertools.permutations(skus)] * 10
    order_ids = await place_all(oms, baskets)
    await eventually(
        lambda: status_counts(db, order_ids),
        lambda counts: counts["fulfilling"] == len(baskets),
        90,
        "every order to be reserved",
    )
    for sku in skus:
        product = await oms.product(sku)
        assert product["reserved"] == len(baskets)
    # A deadlock fails a transaction, and inventory logs why before it tries again, so
    # before that reservation (and with it the last order) is done. (Postgres' own
    # counter, pg_stat_database.deadlocks, may be flushed up to 10 s late.)
    logs = "".join(stack.logs(name) for name in stack.replica_names("inventory"))
    assert "deadlock detected" not in logs


async def status_counts(db: asyncpg.Connection, order_ids: list[str]) -> Counter[str]:
    return Counter((await statuses(db, order_ids)).values())
