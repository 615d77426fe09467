"""What checkout pages, apps and support staff rely on in the order API: retries
that never double an order, waiting for the first answer, queries, changes after
checkout, deletion."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from oms_devtools.client import ADDRESS, OmsClient, eventually, order_body
from oms_devtools.stack import Stack

from .helpers import (
    EventRecorder,
    a_customer,
    dispatch_and_wait_for_capture,
    fulfilling_order,
    gateway_faults,
)

pytestmark = pytest.mark.e2e


async def orders_of(db: asyncpg.Connection, customer: str) -> int:
    return int(
        await db.fetchval("SELECT count(*) FROM orders.orders WHERE customer_id = $1", customer)
    )


# -- idempotency --------------------------------------------------------------------


async def test_a_retried_order_with_the_same_key_is_the_same_order_and_one_saga(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=10)
    body = order_body([(product["sku"], 2)])
    key = {"Idempotency-Key": "checkout-42"}
    first = await oms.post_order(body, headers=key)
    second = await oms.post_order(body, headers=key)
    assert first.status_code == second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    await oms.wait_for_order(first.json()["id"], "fulfilling")
    assert await orders_of(db, oms.customer) == 1
    assert (await oms.product(product["sku"]))["reserved"] == 2


async def test_racing_retries_with_one_key_at_every_order_replica_make_one_order_and_one_saga(
    oms: OmsClient, db: asyncpg.Connection, stack: Stack, event_recorder: EventRecorder
) -> None:
    # With two replicas the copies race in two processes, else in one.
    replicas = [stack.url(name) for name in stack.replica_names("order")]
    product = await oms.create_product(on_hand=50)
    body = order_body([(product["sku"], 1)])
    headers = {**oms.as_customer(), "Idempotency-Key": "double-click"}
    responses = await asyncio.gather(
        *(
            oms.http.post(f"{replicas[n % len(replicas)]}/orders", json=body, headers=headers)
            for n in range(10)
        )
    )
    assert [r.status_code for r in responses] == [202] * 10
    [order_id] = {r.json()["id"] for r in responses}
    assert await orders_of(db, oms.customer) == 1

    # Any order.created of a second saga was published before this one's later event.
    await event_recorder.wait_for("order.fulfilling", lambda d: d["order_id"] == order_id)
    created = event_recorder.published("order.created", lambda d: d["customer_id"] == oms.customer)
    assert [event["order_id"] for event in created] == [order_id]
    assert (await oms.product(product["sku"]))["reserved"] == 1
    steps = [entry["step"] for entry in await oms.history(order_id)]
    assert steps.count("order_placed") == 1


async def test_the_same_key_with_another_body_is_a_conflict(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=10)
    key = {"Idempotency-Key": "k-1"}
    first = await oms.post_order(order_body([(product["sku"], 1)]), headers=key)
    assert first.status_code == 202
    other = await oms.post_order(order_body([(product["sku"], 2)]), headers=key)
    assert other.status_code == 409
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    assert await orders_of(db, oms.customer) == 1
    # Keys belong to their customer: someone else may use the same one.
    mine = await oms.post_order(
        order_body([(product["sku"], 2)]), customer=a_customer("someone-else"), headers=key
    )
    assert mine.status_code == 202


async def test_a_retried_cancel_with_its_key_is_answered_again(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=10)
    order_id = (await oms.place([(product["sku"], 1)]))["id"]
    key = {"Idempotency-Key": "cancel-1"}
    first = await oms.cancel(order_id, headers=key)
    again = await oms.cancel(order_id, headers=key)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == order_id
    assert again.json()["status"] in ("cancelling", "cancelled")
    await oms.wait_for_order(order_id, "cancelled")

    # The key is spent: on another order it is refused, and that order goes on.
    other_id, _ = await fulfilling_order(oms, [(product["sku"], 1)])
    history = await oms.history(other_id)
    reused = await oms.cancel(other_id, headers=key)
    assert reused.status_code == 409
    assert (await oms.order(other_id))["status"] == "fulfilling"
    assert await oms.history(other_id) == history
    assert (await oms.product(product["sku"]))["reserved"] == 1


# -- Prefer: wait ----------------------------------------------------------------------

WAIT_30 = {"Prefer": "wait=30"}


# The waits asked for are long, the answers expected in well under a second: "at once"
# means an order of magnitude sooner than the wait, however busy the machine.


async def test_waiting_tells_the_checkout_at_once_that_an_item_is_out_of_stock(
    oms: OmsClient,
) -> None:
    product = await oms.create_product(on_hand=0)
    started = time.monotonic()
    response = await oms.post_order(order_body([(product["sku"], 1)]), headers=WAIT_30)
    assert response.status_code == 202
    assert response.headers["preference-applied"] == "wait=30"
    assert response.json()["status"] == "rejected"
    assert response.json()["status_reason"] == "out_of_stock"
    assert time.monotonic() - started < 10


async def test_waiting_returns_once_the_order_left_pending(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=5)
    started = time.monotonic()
    response = await oms.post_order(order_body([(product["sku"], 1)]), headers=WAIT_30)
    assert response.status_code == 202
    assert response.json()["status"] in ("awaiting_payment", "paid", "fulfilling")
    assert time.monotonic() - started < 10


async def test_waiting_gives_up_after_the_time_asked_for(oms: OmsClient, stack: Stack) -> None:
    product = await oms.create_product(on_hand=5)
    async with stack.stopped("inventory"):
        started = time.monotonic()
        response = await oms.post_order(
            order_body([(product["sku"], 1)]), headers={"Prefer": "wait=2"}
        )
        waited = time.monotonic() - started
        assert response.status_code == 202
        assert response.json()["status"] == "pending"
        # Nobody can answer while inventory is down: the whole wait asked for, and far
        # less than the most the service would wait (30 s).
        assert 1.9 < waited < 15
    await oms.wait_for_order(response.json()["id"], "fulfilling", "cancelled", timeout=20)


# -- queries ---------------------------------------------------------------------------


async def test_listing_filters_by_status_sku_and_time_and_pages_stably(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=100)
    before = datetime.now(UTC) - timedelta(seconds=1)
    ids = [(await oms.place([(product["sku"], 1)]))["id"] for _ in range(5)]
    for order_id in ids:
        await oms.wait_for_order(order_id, "fulfilling")
    url = f"{oms.urls['order']}/orders"
    headers = oms.as_customer()

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
            await oms.place([(product["sku"], 1)])
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
    mine_id = (await oms.place([(product["sku"], 1)]))["id"]
    other = a_customer("other")
    theirs_id = (await oms.place([(product["sku"], 1)], customer=other))["id"]
    url = f"{oms.urls['order']}/orders"
    mine = (
        await oms.http.get(url, params={"sku": product["sku"]}, headers=oms.as_customer())
    ).json()
    assert [(o["id"], o["customer_id"]) for o in mine["items"]] == [(mine_id, oms.customer)]
    peek = await oms.http.get(url, params={"customer_id": other}, headers=oms.as_customer())
    assert peek.status_code == 403
    admin = (
        await oms.http.get(
            url, params={"customer_id": other, "sku": product["sku"]}, headers=oms.admin()
        )
    ).json()
    assert [(o["id"], o["customer_id"]) for o in admin["items"]] == [(theirs_id, other)]
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
    order_id, _ = await fulfilling_order(oms, [(product["sku"], 1)])
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

    assert (await oms.dispatch(shipment["id"])).status_code == 200
    await oms.wait_for_order(order_id, "shipped")
    refused = await oms.http.patch(
        url, json={"shipping_address": ADDRESS}, headers=oms.as_customer()
    )
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/order-not-modifiable"


async def test_more_items_go_through_stock_payment_and_the_dispatch_note(
    oms: OmsClient, event_recorder: EventRecorder
) -> None:
    mug = await oms.create_product(on_hand=5, unit_price=500)
    tea = await oms.create_product(on_hand=5, unit_price=300)
    order_id, _ = await fulfilling_order(oms, [(mug["sku"], 1)])
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
    holds = await oms.gateway_holds(payment["id"])
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
    [amended] = await event_recorder.wait_for("order.amended", lambda d: d["order_id"] == order_id)
    assert (amended["total"], amended["currency"]) == (1300, "EUR")
    assert {(line["sku"], line["quantity"]) for line in amended["lines"]} == {
        (mug["sku"], 2),
        (tea["sku"], 1),
    }

    # It ships and settles with the new items.
    captured = await dispatch_and_wait_for_capture(oms, order_id)
    assert captured["captured_amount"] == 1300


async def test_items_that_do_not_fit_leave_the_order_untouched(oms: OmsClient) -> None:
    mug = await oms.create_product(on_hand=3, unit_price=500)
    order_id, _ = await fulfilling_order(oms, [(mug["sku"], 1)])
    asked = await oms.http.patch(
        f"{oms.urls['order']}/orders/{order_id}",
        json={"items": [{"sku": mug["sku"], "quantity": 7}]},
        headers=oms.as_customer(),
    )
    assert asked.status_code == 202
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
    order_id, _ = await fulfilling_order(oms, [(mug["sku"], 1)])
    async with gateway_faults(oms, failure_rate=1.0):
        asked = await oms.http.patch(
            f"{oms.urls['order']}/orders/{order_id}",
            json={"items": [{"sku": mug["sku"], "quantity": 2}]},
            headers=oms.as_customer(),
        )
        assert asked.status_code == 202
        order = await eventually(
            lambda: oms.order(order_id),
            lambda o: o["status_detail"].get("item_change", {}).get("status") == "rejected",
            30,
            "the refusal",
        )
    assert order["status_detail"]["item_change"]["reason"] == "payment_unavailable"
    assert (order["total"], order["items"][0]["quantity"]) == (500, 1)
    assert (await oms.product(mug["sku"]))["reserved"] == 1
    payment = await oms.payment_of(order_id)
    assert payment is not None and payment["authorized_amount"] == 500


async def test_items_of_a_shipped_order_cannot_change(oms: OmsClient) -> None:
    mug = await oms.create_product(on_hand=5)
    order_id, _ = await fulfilling_order(oms, [(mug["sku"], 1)])
    await dispatch_and_wait_for_capture(oms, order_id)
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
    oms: OmsClient, db: asyncpg.Connection, event_recorder: EventRecorder
) -> None:
    product = await oms.create_product(on_hand=5)
    order_id, _ = await fulfilling_order(oms, [(product["sku"], 1)])
    url = f"{oms.urls['order']}/orders/{order_id}"
    unfinished = await oms.http.delete(url, headers=oms.as_customer())
    assert unfinished.status_code == 409
    assert (await oms.cancel(order_id)).status_code == 202
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
    await event_recorder.wait_for("order.deleted", lambda d: d["order_id"] == order_id)
    erased = await eventually(
        lambda: db.fetchval("SELECT address FROM shipping.shipments WHERE order_id = $1", order_id),
        lambda value: value == "null",
        10,
        "the dispatch note's address erased",
    )
    assert erased == "null"
