"""The order API's guard rails: who may see what, and what bad input gets back."""

from __future__ import annotations

import asyncpg
import pytest

from oms_devtools.client import ADDRESS, OmsClient, order_body
from oms_devtools.stack import Stack

from .helpers import a_customer, dispatch_and_wait_for_capture, fulfilling_order

# Validation and ownership answers do not depend on the replica count.
pytestmark = [pytest.mark.e2e, pytest.mark.single_pass]


async def test_a_customer_cannot_see_or_cancel_another_customers_order(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=5)
    order_id, _ = await fulfilling_order(oms, [(product["sku"], 1)])
    url = f"{oms.urls['order']}/orders/{order_id}"
    history = await oms.history(order_id)
    assert (await oms.http.get(url, headers=oms.as_customer())).status_code == 200
    stranger = a_customer("mallory")

    seen = await oms.http.get(url, headers=oms.as_customer(stranger))
    assert seen.status_code == 404
    assert seen.json()["type"] == "/problems/order-not-found"
    assert (
        await oms.http.get(f"{url}/history", headers=oms.as_customer(stranger))
    ).status_code == 404
    cancelled = await oms.cancel(order_id, customer=stranger)
    assert cancelled.status_code == 404
    assert cancelled.json()["type"] == "/problems/order-not-found"

    # A cancellation takes effect in the request itself: had it been accepted, the
    # order would already be cancelling.
    assert (await oms.order(order_id))["status"] == "fulfilling"
    assert await oms.history(order_id) == history
    assert (await oms.product(product["sku"]))["reserved"] == 1
    assert (await oms.http.get(url, headers=oms.admin())).status_code == 200


async def test_a_customer_cannot_change_or_delete_another_customers_order(
    oms: OmsClient,
) -> None:
    product = await oms.create_product(on_hand=5)
    order_id, _ = await fulfilling_order(oms, [(product["sku"], 1)])
    url = f"{oms.urls['order']}/orders/{order_id}"
    stranger = oms.as_customer(a_customer("mallory"))
    before = await oms.order(order_id)

    elsewhere = {**ADDRESS, "line1": "66 Thief Lane", "city": "Hamburg"}
    moved = await oms.http.patch(url, json={"shipping_address": elsewhere}, headers=stranger)
    more = await oms.http.patch(
        url, json={"items": [{"sku": product["sku"], "quantity": 3}]}, headers=stranger
    )
    for refused in (moved, more):
        assert refused.status_code == 404
        assert refused.json()["type"] == "/problems/order-not-found"
    after = await oms.order(order_id)
    assert (after["shipping_address"], after["pending_shipping_address"]) == (
        before["shipping_address"],
        None,
    )
    assert after["items"] == before["items"]
    assert after["status_detail"] == before["status_detail"]

    assert (await oms.cancel(order_id)).status_code == 202
    await oms.wait_for_order(order_id, "cancelled")
    erased = await oms.http.delete(url, headers=stranger)
    assert erased.status_code == 404
    assert erased.json()["type"] == "/problems/order-not-found"
    kept = await oms.http.get(url, headers=oms.as_customer())
    assert kept.status_code == 200
    assert kept.json()["shipping_address"] == before["shipping_address"]
    # The order could be deleted: the stranger was refused for not owning it.
    assert (await oms.http.delete(url, headers=oms.as_customer())).status_code == 204


async def test_orders_need_a_valid_token(oms: OmsClient) -> None:
    url = f"{oms.urls['order']}/orders"
    body = {
        "items": [{"sku": "A", "quantity": 1}],
        "shipping_address": ADDRESS,
        "payment": {"token": "tok_ok"},
    }
    missing = await oms.http.post(url, json=body)
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    forged = await oms.http.post(url, json=body, headers={"Authorization": "Bearer a.b.c"})
    assert forged.status_code == 401


async def test_a_customer_cannot_order_in_someone_elses_name(oms: OmsClient) -> None:
    response = await oms.http.post(
        f"{oms.urls['order']}/orders",
        headers=oms.as_customer("alice"),
        json={
            "customer_id": "bob",
            "items": [{"sku": "A", "quantity": 1}],
            "shipping_address": ADDRESS,
            "payment": {"token": "tok_ok"},
        },
    )
    assert response.status_code == 403
    assert response.json()["field"] == "customer_id"


async def test_an_admin_may_order_for_a_customer(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=5)
    carol = a_customer("carol")
    response = await oms.http.post(
        f"{oms.urls['order']}/orders",
        headers=oms.admin(),
        json={"customer_id": carol, **order_body([(product["sku"], 1)])},
    )
    assert response.status_code == 202
    assert response.json()["customer_id"] == carol
    # The answer names the order it placed, for the customer to follow.
    assert response.headers["location"] == f"/orders/{response.json()['id']}"
    mine = await oms.http.get(
        f"{oms.urls['order']}{response.headers['location']}", headers=oms.as_customer(carol)
    )
    assert (mine.status_code, mine.json()["id"]) == (200, response.json()["id"])


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([{"sku": "A", "quantity": 0}], "items[0].quantity"),
        ([{"sku": "A", "quantity": "2"}], "items[0].quantity"),
        ([{"sku": "A", "quantity": 10_001}], "items[0].quantity"),
        ([{"sku": "", "quantity": 1}], "items[0].sku"),
        ([{"sku": "A", "quantity": 1, "gift": True}], "items[0].gift"),
        ([], "items"),
    ],
)
async def test_bad_order_lines_are_a_422_naming_the_field_and_store_nothing(
    oms: OmsClient, db: asyncpg.Connection, items: list[dict[str, object]], field: str
) -> None:
    response = await oms.post_order({**order_body([]), "items": items})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/validation-error"
    assert field in [error["field"] for error in response.json()["errors"]]
    assert await _count_orders(db, oms.customer) == 0


async def test_a_missing_address_field_is_named(oms: OmsClient) -> None:
    address = {k: v for k, v in ADDRESS.items() if k != "city"}
    response = await oms.http.post(
        f"{oms.urls['order']}/orders",
        headers=oms.as_customer(),
        json={
            "items": [{"sku": "A", "quantity": 1}],
            "shipping_address": address,
            "payment": {"token": "tok_ok"},
        },
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["shipping_address.city"]


async def test_an_unknown_order_is_a_404_problem(oms: OmsClient) -> None:
    for order_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        response = await oms.http.get(f"{oms.urls['order']}/orders/{order_id}", headers=oms.admin())
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/order-not-found"


async def _count_orders(db: asyncpg.Connection, customer: str) -> int:
    return int(
        await db.fetchval("SELECT count(*) FROM orders.orders WHERE customer_id = $1", customer)
    )


async def test_a_customer_placing_orders_too_fast_is_told_to_slow_down(
    oms: OmsClient, stack: Stack
) -> None:
    product = await oms.create_product(on_hand=50)
    limits = {"OMS_RATE_LIMIT_PER_SECOND": "0.5", "OMS_RATE_LIMIT_BURST": "2"}
    hasty, calm = a_customer("hasty"), a_customer("calm")
    async with stack.restarted_with("order", limits):
        answers = [
            (await oms.place_order([(product["sku"], 1)], customer=hasty)).status_code
            for _ in range(3)
        ]
        assert answers == [202, 202, 429]
        limited = await oms.place_order([(product["sku"], 1)], customer=hasty)
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["retry-after"]) >= 1
        assert (await oms.place_order([(product["sku"], 1)], customer=calm)).status_code == 202
        staff = await oms.http.post(
            f"{oms.urls['order']}/orders",
            headers=oms.admin(),
            json={"customer_id": hasty, **order_body([(product["sku"], 1)])},
        )
        assert staff.status_code == 202


async def test_dispatch_and_refunds_are_for_staff_only(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=5)
    order_id, shipment = await fulfilling_order(oms, [(product["sku"], 1)])
    dispatch_url = f"{oms.urls['shipping']}/shipments/{shipment['id']}/dispatch"

    customer = await oms.http.post(dispatch_url, headers=oms.as_customer())
    anonymous = await oms.http.post(dispatch_url)
    assert (customer.status_code, anonymous.status_code) == (403, 401)
    # Dispatching answers once the parcel left: nothing moved.
    unmoved = await oms.shipment_of(order_id)
    assert unmoved is not None
    assert (unmoved["status"], unmoved["tracking_number"]) == ("created", None)
    assert (await oms.order(order_id))["status"] == "fulfilling"

    payment = await dispatch_and_wait_for_capture(oms, order_id)
    refund_url = f"{oms.urls['payment']}/payments/{payment['id']}/refund"
    refund = await oms.http.post(refund_url, json={"amount": 1}, headers=oms.as_customer())
    assert refund.status_code == 403
    refunds = await oms.http.get(
        f"{oms.urls['payment']}/payments/{payment['id']}/refunds", headers=oms.admin()
    )
    assert refunds.json() == []
    after = await oms.payment_of(order_id)
    assert after is not None
    assert (after["status"], after["refunded_amount"]) == ("captured", 0)


async def test_an_oversized_body_is_refused_before_it_is_read(oms: OmsClient) -> None:
    huge = {
        "items": [{"sku": "A", "quantity": 1}],
        "shipping_address": {**ADDRESS, "name": "x" * 300_000},
        "payment": {"token": "tok_ok"},
    }
    response = await oms.http.post(
        f"{oms.urls['order']}/orders", json=huge, headers=oms.as_customer()
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/payload-too-large"
