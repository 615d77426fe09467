"""What checkout pages, apps and support staff rely on in the order API: retries
that never double an order, waiting for the first answer, queries, changes after
checkout, deletion."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from oms_devtools.client import ADDRESS, OmsClient, eventually

pytestmark = pytest.mark.e2e


def order_body(sku: str, quantity: int = 1, token: str = "tok_ok") -> dict[str, Any]:
    return {
        "items": [{"sku": sku, "quantity": quantity}],
        "shipping_address": ADDRESS,
        "payment": {"token": token},
    }


async def post_order(
    oms: OmsClient, body: dict[str, Any], customer: str = "alice", **headers: str
) -> httpx.Response:
    return await oms.http.post(
        f"{oms.urls['order']}/orders", json=body, headers={**oms.as_customer(customer), **headers}
    )


async def orders_of(db: asyncpg.Connection, customer: str) -> int:
    return int(
        await db.fetchval("SELECT count(*) FROM orders.orders WHERE customer_id = $1", customer)
    )


# -- idempotency --------------------------------------------------------------------


async def test_a_retried_order_with_the_same_key_is_the_same_order_and_one_saga(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=10)
    body = order_body(product["sku"], 2)
    first = await post_order(oms, body, "idem-1", **{"Idempotency-Key": "checkout-42"})
    second = await post_order(oms, body, "idem-1", **{"Idempotency-Key": "checkout-42"})
    assert first.status_code == second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    await oms.wait_for_order(first.json()["id"], "fulfilling")
    assert await orders_of(db, "idem-1") == 1
    assert (await oms.product(product["sku"]))["reserved"] == 2


async def test_racing_retries_with_one_key_create_one_order(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=50)
    body = order_body(product["sku"])
    responses = await asyncio.gather(
        *(
            post_order(oms, body, "idem-race", **{"Idempotency-Key": "double-click"})
            for _ in range(10)
        )
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await orders_of(db, "idem-race") == 1


async def test_the_same_key_with_another_body_is_a_conflict(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=10)
    await post_order(oms, order_body(product["sku"], 1), "idem-2", **{"Idempotency-Key": "k-1"})
    other = await post_order(
        oms, order_body(product["sku"], 2), "idem-2", **{"Idempotency-Key": "k-1"}
    )
    assert other.status_code == 409
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    assert await orders_of(db, "idem-2") == 1
    # Keys belong to their customer: someone else may use the same one.
    mine = await post_order(
        oms, order_body(product["sku"], 2), "idem-3", **{"Idempotency-Key": "k-1"}
    )
    assert mine.status_code == 202


async def test_a_retried_cancel_with_its_key_is_answered_again(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=10)
    order = (await post_order(oms, order_body(product["sku"]))).json()
    url = f"{oms.urls['order']}/orders/{order['id']}/cancel"
    headers = {**oms.as_customer(), "Idempotency-Key": "cancel-1"}
    first = await oms.http.post(url, headers=headers)
    again = await oms.http.post(url, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    await oms.wait_for_order(order["id"], "cancelled")
    other = (await post_order(oms, order_body(product["sku"]))).json()
    reused = await oms.http.post(
        f"{oms.urls['order']}/orders/{other['id']}/cancel", headers=headers
    )
    assert reused.status_code == 409


# -- Prefer: wait ----------------------------------------------------------------------


async def test_waiting_tells_the_checkout_at_once_that_an_item_is_out_of_stock(
    oms: OmsClient,
) -> None:
    product = await oms.create_product(on_hand=0)
    started = time.monotonic()
    response = await post_order(oms, order_body(product["sku"]), Prefer="wait=10")
    assert response.status_code == 202
    assert response.headers["preference-applied"] == "wait=10"
    assert response.json()["status"] == "rejected"
    assert response.json()["status_reason"] == "out_of_stock"
    assert time.monotonic() - started < 5


async def test_waiting_returns_once_the_order_left_pending(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=5)
    response = await post_order(oms, order_body(product["sku"]), Prefer="wait=10")
    assert response.json()["status"] != "pending"


async def test_waiting_gives_up_after_the_time_asked_for(oms: OmsClient, stack: Any) -> None:
    product = await oms.create_product(on_hand=5)
    async with stack.stopped("inventory"):
        started = time.monotonic()
        response = await post_order(oms, order_body(product["sku"]), Prefer="wait=1")
        assert response.json()["status"] == "pending"
        assert 0.9 < time.monotonic() - started < 4
    await oms.wait_for_order(response.json()["id"], "fulfilling", "cancelled", timeout=20)


# -- queries ---------------------------------------------------------------------------


async def test_listing_filters_by_status_sku_and_time_and_pages_stably(oms: OmsClient) -> None:
    customer = "lister"
    product = await oms.create_product(on_hand=100)
    before = datetime.now(UTC) - timedelta(seconds=1)
    ids = [
        (await post_order(oms, order_body(product["sku"]), customer)).json()["id"] for _ in range(5)
    ]
    for order_id in ids:
        await oms.wait_for_order(order_id, "fulfilling")
    url = f"{oms.urls['order']}/orders"
    headers = oms.as_customer(customer)

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "sku": product["sku"]}
        if cursor:
            params["cursor"] = cursor
        page = (await oms.http.get(url, params=params, headers=headers)).json()
        seen += [order["id"] for order in page["items"]]
        if cursor is None:
            # New orders arriving while paging sort before the cursor: no repeats.
            await post_order(oms, order_body(product["sku"]), customer)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # newest first, each exactly once

    shipped = (
        await oms.http.get(
            url, params={"status": "shipped", "sku": product["sku"]}, headers=headers
        )
    ).json()
    assert shipped["items"] == []
    fulfilling = (
        await oms.http.get(
            url,
            params={
                "status": ["fulfilling", "paid"],
                "created_from": before.isoformat(),
                "sku": product["sku"],
                "limit": 200,
            },
            headers=headers,
        )
    ).json()
    assert set(ids) <= {order["id"] for order in fulfilling["items"]}
    future = (
        await oms.http.get(
            url,
            params={"created_from": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
            headers=headers,
        )
    ).json()
    assert future["items"] == []


async def test_customers_list_only_their_own_orders_and_admins_may_filter(
    oms: OmsClient,
) -> None:
    product = await oms.create_product(on_hand=10)
    await post_order(oms, order_body(product["sku"]), "list-a")
    await post_order(oms, order_body(product["sku"]), "list-b")
    url = f"{oms.urls['order']}/orders"
    mine = (
        await oms.http.get(url, params={"sku": product["sku"]}, headers=oms.as_customer("list-a"))
    ).json()
    assert {o["customer_id"] for o in mine["items"]} == {"list-a"}
    peek = await oms.http.get(
        url, params={"customer_id": "list-b"}, headers=oms.as_customer("list-a")
    )
    assert peek.status_code == 403
    admin = (
        await oms.http.get(
            url, params={"customer_id": "list-b", "sku": product["sku"]}, headers=oms.admin()
        )
    ).json()
    assert {o["customer_id"] for o in admin["items"]} == {"list-b"}
    bad = await oms.http.get(url, params={"cursor": "not-a-cursor"}, headers=oms.admin())
    assert bad.status_code == 422
    assert bad.json()["field"] == "cursor"
    bad_status = await oms.http.get(url, params={"status": "lost"}, headers=oms.admin())
    assert bad_status.status_code == 422


# -- changes after checkout ---------------------------------------------------------------


async def test_the_address_changes_on_the_dispatch_note_until_the_parcel_leaves(
    oms: OmsClient,
) -> None:
    product = await oms.create_product(on_hand=5)
    order_id = (await post_order(oms, order_body(product["sku"]))).json()["id"]
    await oms.wait_for_order(order_id, "fulfilling")
    office = {**ADDRESS, "line1": "9 Work Rd", "city": "Hamburg", "postal_code": "20095"}
    url = f"{oms.urls['order']}/orders/{order_id}"
    accepted = await oms.http.patch(
        url, json={"shipping_address": office}, headers=oms.as_customer()
    )
    assert accepted.status_code == 202
    assert accepted.json()["pending_shipping_address"]["city"] == "Hamburg"
    changed = await eventually(
        lambda: oms.order(order_id),
        lambda o: o["shipping_address"]["city"] == "Hamburg",
        10,
        "the new address",
    )
    assert changed["pending_shipping_address"] is None
    shipment = await oms.shipment_of(order_id)
    assert shipment is not None and shipment["address"]["city"] == "Hamburg"

    await oms.dispatch(shipment["id"])
    await oms.wait_for_order(order_id, "shipped")
    refused = await oms.http.patch(
        url, json={"shipping_address": ADDRESS}, headers=oms.as_customer()
    )
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/order-not-modifiable"


async def test_more_items_go_through_stock_payment_and_the_dispatch_note(
    oms: OmsClient, event_recorder: Any
) -> None:
    mug = await oms.create_product(on_hand=5, unit_price=500)
    tea = await oms.create_product(on_hand=5, unit_price=300)
    order_id = (await post_order(oms, order_body(mug["sku"], 1))).json()["id"]
    await oms.wait_for_order(order_id, "fulfilling")
    response = await oms.http.patch(
        f"{oms.urls['order']}/orders/{order_id}",
        json={"items": [{"sku": mug["sku"], "quantity": 2}, {"sku": tea["sku"], "quantity": 1}]},
        headers=oms.as_customer(),
    )
    assert response.status_code == 202
    order = await eventually(
        lambda: oms.order(order_id),
        lambda o: o["status_detail"].get("item_change", {}).get("status") == "applied",
        20,
        "the change of items",
    )
    assert order["total"] == 2 * 500 + 300
    assert (
        (await oms.product(mug["sku"]))["reserved"],
        (await oms.product(tea["sku"]))["reserved"],
    ) == (2, 1)
    payment = await oms.payment_of(order_id)
    assert payment is not None and payment["authorized_amount"] == 1300
    holds = (
        await oms.http.get(
            f"{oms.urls['gateway']}/v1/authorizations", params={"reference": payment["id"]}
        )
    ).json()["items"]
    assert sorted((h["amount"], h["status"]) for h in holds) == [
        (500, "voided"),
        (1300, "authorized"),
    ]
    shipment = await oms.shipment_of(order_id)
    assert shipment is not None
    assert {(line["sku"], line["quantity"]) for line in shipment["lines"]} == {
        (mug["sku"], 2),
        (tea["sku"], 1),
    }
    assert [e for k, e in event_recorder.events if k == "order.amended"]

    # It ships and settles with the new items.
    await oms.dispatch(shipment["id"])
    captured = await eventually(
        lambda: oms.payment_of(order_id), lambda p: p["status"] == "captured", 10, "capture"
    )
    assert captured["captured_amount"] == 1300


async def test_items_that_do_not_fit_leave_the_order_untouched(oms: OmsClient) -> None:
    mug = await oms.create_product(on_hand=3, unit_price=500)
    order_id = (await post_order(oms, order_body(mug["sku"], 1))).json()["id"]
    await oms.wait_for_order(order_id, "fulfilling")
    await oms.http.patch(
        f"{oms.urls['order']}/orders/{order_id}",
        json={"items": [{"sku": mug["sku"], "quantity": 7}]},
        headers=oms.as_customer(),
    )
    order = await eventually(
        lambda: oms.order(order_id),
        lambda o: o["status_detail"].get("item_change", {}).get("status") == "rejected",
        20,
        "the refusal",
    )
    assert order["status_detail"]["item_change"] == {
        "status": "rejected",
        "reason": "out_of_stock",
        "skus": [mug["sku"]],
    }
    assert [(i["sku"], i["quantity"]) for i in order["items"]] == [(mug["sku"], 1)]
    assert (await oms.product(mug["sku"]))["reserved"] == 1
    shipment = await oms.shipment_of(order_id)
    assert shipment is not None and shipment["status"] == "created"  # released again
    assert (await oms.dispatch(shipment["id"])).status_code == 200


async def test_a_new_total_the_gateway_will_not_hold_puts_everything_back(
    oms: OmsClient,
) -> None:
    mug = await oms.create_product(on_hand=5, unit_price=500)
    order_id = (await post_order(oms, order_body(mug["sku"], 1))).json()["id"]
    await oms.wait_for_order(order_id, "fulfilling")
    config = f"{oms.urls['gateway']}/v1/_config"
    await oms.http.post(config, json={"failure_rate": 1.0})
    try:
        await oms.http.patch(
            f"{oms.urls['order']}/orders/{order_id}",
            json={"items": [{"sku": mug["sku"], "quantity": 2}]},
            headers=oms.as_customer(),
        )
        order = await eventually(
            lambda: oms.order(order_id),
            lambda o: o["status_detail"].get("item_change", {}).get("status") == "rejected",
            30,
            "the refusal",
        )
    finally:
        await oms.http.post(config, json={"failure_rate": 0.0})
    assert order["status_detail"]["item_change"]["reason"] == "payment_unavailable"
    assert (order["total"], order["items"][0]["quantity"]) == (500, 1)
    assert (await oms.product(mug["sku"]))["reserved"] == 1
    payment = await oms.payment_of(order_id)
    assert payment is not None and payment["authorized_amount"] == 500


async def test_items_of_a_shipped_order_cannot_change(oms: OmsClient) -> None:
    mug = await oms.create_product(on_hand=5)
    order_id = (await post_order(oms, order_body(mug["sku"]))).json()["id"]
    await oms.wait_for_order(order_id, "fulfilling")
    shipment = await oms.shipment_of(order_id)
    assert shipment is not None
    await oms.dispatch(shipment["id"])
    await oms.wait_for_order(order_id, "shipped")
    response = await oms.http.patch(
        f"{oms.urls['order']}/orders/{order_id}",
        json={"items": [{"sku": mug["sku"], "quantity": 2}]},
        headers=oms.as_customer(),
    )
    assert response.status_code == 409
    assert "shipped" in response.json()["detail"]
    empty = await oms.http.patch(
        f"{oms.urls['order']}/orders/{order_id}", json={}, headers=oms.as_customer()
    )
    assert empty.status_code == 422


# -- deletion ---------------------------------------------------------------------------


async def test_deleting_a_finished_order_erases_personal_data_and_tells_subscribers(
    oms: OmsClient, db: asyncpg.Connection, event_recorder: Any
) -> None:
    product = await oms.create_product(on_hand=5)
    order_id = (await post_order(oms, order_body(product["sku"]))).json()["id"]
    await oms.wait_for_order(order_id, "fulfilling")
    url = f"{oms.urls['order']}/orders/{order_id}"
    unfinished = await oms.http.delete(url, headers=oms.as_customer())
    assert unfinished.status_code == 409
    await oms.http.post(f"{url}/cancel", headers=oms.as_customer())
    await oms.wait_for_order(order_id, "cancelled")

    deleted = await oms.http.delete(url, headers=oms.as_customer())
    assert deleted.status_code == 204
    assert (await oms.http.get(url, headers=oms.as_customer())).status_code == 404
    assert (await oms.http.get(url, headers=oms.admin())).status_code == 404
    address = await db.fetchval(
        "SELECT shipping_address FROM orders.orders WHERE id = $1::uuid", order_id
    )
    assert "Ada" not in address
    total = await db.fetchval("SELECT total FROM orders.orders WHERE id = $1::uuid", order_id)
    assert total == 1000  # the books keep what was sold
    await eventually(
        lambda: asyncio.sleep(
            0,
            [
                k
                for k, body in event_recorder.events
                if k == "order.deleted" and order_id.encode() in body
            ],
        ),
        bool,
        10,
        "order.deleted",
    )
    erased = await eventually(
        lambda: db.fetchval("SELECT address FROM shipping.shipments WHERE order_id = $1", order_id),
        lambda value: value == "null",
        10,
        "the dispatch note's address erased",
    )
    assert erased == "null"
