"""The order API's guard rails: who may see what, and what bad input gets back."""

from __future__ import annotations

import asyncpg
import pytest

from oms_devtools.client import ADDRESS, OmsClient
from oms_devtools.stack import Stack

pytestmark = pytest.mark.e2e


async def test_a_customer_cannot_see_another_customers_order(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=5)
    order = (await oms.place_order([(product["sku"], 1)], customer="bob")).json()
    url = f"{oms.urls['order']}/orders/{order['id']}"
    assert (await oms.http.get(url, headers=oms.as_customer("bob"))).status_code == 200
    stranger = await oms.http.get(url, headers=oms.as_customer("mallory"))
    assert stranger.status_code == 404
    assert stranger.json()["type"] == "/problems/order-not-found"
    assert (
        await oms.http.get(f"{url}/history", headers=oms.as_customer("mallory"))
    ).status_code == 404
    assert (
        await oms.http.post(f"{url}/cancel", headers=oms.as_customer("mallory"))
    ).status_code == 404
    assert (await oms.http.get(url, headers=oms.admin())).status_code == 200


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
    response = await oms.http.post(
        f"{oms.urls['order']}/orders",
        headers=oms.admin(),
        json={
            "customer_id": "carol",
            "items": [{"sku": product["sku"], "quantity": 1}],
            "shipping_address": ADDRESS,
            "payment": {"token": "tok_ok"},
        },
    )
    assert response.status_code == 202
    assert response.json()["customer_id"] == "carol"


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
    before = await _count_orders(db)
    response = await oms.http.post(
        f"{oms.urls['order']}/orders",
        headers=oms.as_customer("dave"),
        json={"items": items, "shipping_address": ADDRESS, "payment": {"token": "tok_ok"}},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/validation-error"
    assert field in [error["field"] for error in response.json()["errors"]]
    assert await _count_orders(db) == before


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


async def _count_orders(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT count(*) FROM orders.orders WHERE customer_id = 'dave'"))


async def test_a_customer_placing_orders_too_fast_is_told_to_slow_down(
    oms: OmsClient, stack: Stack
) -> None:
    product = await oms.create_product(on_hand=50)
    limits = {"OMS_RATE_LIMIT_PER_SECOND": "0.5", "OMS_RATE_LIMIT_BURST": "2"}
    async with stack.restarted_with("order", limits):
        answers = [
            (await oms.place_order([(product["sku"], 1)], customer="hasty")).status_code
            for _ in range(3)
        ]
        assert answers == [202, 202, 429]
        limited = await oms.place_order([(product["sku"], 1)], customer="hasty")
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["retry-after"]) >= 1
        assert (await oms.place_order([(product["sku"], 1)], customer="calm")).status_code == 202
        staff = await oms.http.post(
            f"{oms.urls['order']}/orders",
            headers=oms.admin(),
            json={
                "customer_id": "hasty",
                "items": [{"sku": product["sku"], "quantity": 1}],
                "shipping_address": ADDRESS,
                "payment": {"token": "tok_ok"},
            },
        )
        assert staff.status_code == 202


async def test_dispatch_and_refunds_are_for_staff_only(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=5)
    order = (await oms.place_order([(product["sku"], 1)])).json()
    await oms.wait_for_order(order["id"], "fulfilling")
    shipment = await oms.shipment_of(order["id"])
    payment = await oms.payment_of(order["id"])
    assert shipment is not None and payment is not None
    customer = oms.as_customer()
    dispatch = await oms.http.post(
        f"{oms.urls['shipping']}/shipments/{shipment['id']}/dispatch", headers=customer
    )
    refund = await oms.http.post(
        f"{oms.urls['payment']}/payments/{payment['id']}/refund",
        json={"amount": 1},
        headers=customer,
    )
    assert (dispatch.status_code, refund.status_code) == (403, 403)
    anonymous = await oms.http.post(f"{oms.urls['shipping']}/shipments/{shipment['id']}/dispatch")
    assert anonymous.status_code == 401


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
