"""Input that could once get past the edge, and what a service does with work that
keeps failing: refused with the field named, or failed visibly after its budget."""

from __future__ import annotations

import json

import asyncpg
import pytest

from oms_devtools.client import ADDRESS, OmsClient, eventually
from oms_devtools.stack import Stack

pytestmark = pytest.mark.e2e

BAD_KEYS = ["été".encode(), b"two words", b"x" * 256, b""]


async def captured_order(oms: OmsClient) -> tuple[str, dict[str, object]]:
    product = await oms.create_product(on_hand=5, unit_price=1000)
    order_id = (await oms.place_order([(product["sku"], 1)])).json()["id"]
    await oms.wait_for_order(order_id, "fulfilling")
    shipment = await oms.shipment_of(order_id)
    assert shipment is not None
    await oms.dispatch(str(shipment["id"]))
    payment = await eventually(
        lambda: oms.payment_of(order_id), lambda p: p["status"] == "captured", 10, "capture"
    )
    return order_id, payment


def names_the_idempotency_key(response: object) -> bool:
    assert hasattr(response, "status_code") and hasattr(response, "json")
    if response.status_code != 422:
        return False
    body = response.json()
    return [e["field"] for e in body["errors"]] == ["Idempotency-Key"] and body["errors"][0][
        "in"
    ] == "header"


@pytest.mark.parametrize("key", BAD_KEYS, ids=["accents", "space", "too-long", "empty"])
async def test_a_bad_idempotency_key_is_refused_at_every_edge_naming_the_header(
    oms: OmsClient, db: asyncpg.Connection, key: bytes
) -> None:
    order_id, payment = await captured_order(oms)
    header = {"Idempotency-Key": key}
    product = await oms.create_product(on_hand=5)

    placed = await oms.http.post(
        f"{oms.urls['order']}/orders",
        headers={**oms.as_customer(), **header},
        json={
            "items": [{"sku": product["sku"], "quantity": 1}],
            "shipping_address": ADDRESS,
            "payment": {"token": "tok_ok"},
        },
    )
    cancelled = await oms.http.post(
        f"{oms.urls['order']}/orders/{order_id}/cancel", headers={**oms.as_customer(), **header}
    )
    refunded = await oms.http.post(
        f"{oms.urls['payment']}/payments/{payment['id']}/refund",
        headers={**oms.admin(), **header},
        json={"amount": 100},
    )
    restocked = await oms.http.post(
        f"{oms.urls['inventory']}/products/{product['sku']}/restock",
        headers={**oms.admin(), **header},
        json={"quantity": 3},
    )

    for response in (placed, cancelled, refunded, restocked):
        assert names_the_idempotency_key(response), response.text
    assert (await oms.product(product["sku"]))["on_hand"] == 5
    orders_of_product = await db.fetchval(
        "SELECT count(*) FROM orders.orders WHERE lines::text LIKE '%' || $1 || '%'",
        product["sku"],
    )
    assert orders_of_product == 0
    assert (
        await db.fetchval(
            "SELECT count(*) FROM payment.refunds WHERE payment_id = $1::uuid", payment["id"]
        )
        == 0
    )


async def test_a_gateway_operation_that_raises_unexpectedly_ends_failed_after_its_budget(
    oms: OmsClient, db: asyncpg.Connection, stack: Stack
) -> None:
    # A refund queued before keys were checked at the edge: the HTTP client cannot
    # even send its key, so every call raises. It used to be retried for ever.
    _, payment = await captured_order(oms)
    refund_id = f"{payment['id']}-été"
    async with db.transaction():
        await db.execute(
            "INSERT INTO payment.refunds (id, payment_id, amount, reason) "
            "VALUES ($1, $2::uuid, 100, 'requested_by_staff')",
            refund_id,
            payment["id"],
        )
        await db.execute(
            "INSERT INTO payment.payment_operations "
            "(payment_id, kind, amount, reference, idempotency_key, attempts) "
            "VALUES ($1::uuid, 'refund', 100, $2, $3, 0)",
            payment["id"],
            refund_id,
            f"{payment['id']}:refund:{refund_id}",
        )

    async def operation() -> asyncpg.Record | None:
        row: asyncpg.Record | None = await db.fetchrow(
            "SELECT status, attempts, last_error FROM payment.payment_operations "
            "WHERE reference = $1",
            refund_id,
        )
        return row

    failed = await eventually(operation, lambda op: op["status"] == "failed", 30, "give up")

    assert failed["attempts"] == 4  # OMS_GATEWAY_MAX_ATTEMPTS' default
    assert "UnicodeEncodeError" in failed["last_error"]
    refunds = await oms.http.get(
        f"{oms.urls['payment']}/payments/{payment['id']}/refunds", headers=oms.admin()
    )
    assert {r["id"]: r["status"] for r in refunds.json()}[refund_id] == "failed"
    given_up = [
        entry
        for name in stack.replica_names("payment")
        for line in stack.logs(name).splitlines()
        if line.startswith("{")
        and (entry := json.loads(line)).get("payment_id") == payment["id"]
        and "giving up refund" in entry["msg"]
    ]
    assert given_up, "no log line for the given-up refund"
    assert given_up[-1]["level"] == "error"
    assert "UnicodeEncodeError" in given_up[-1]["error"]
