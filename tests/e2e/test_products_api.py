"""The inventory admin API as warehouse staff use it."""

from __future__ import annotations

import uuid

import pytest

from oms_devtools.client import OmsClient

# Product API answers do not depend on how many replicas compete for the queues.
pytestmark = [pytest.mark.e2e, pytest.mark.single_pass]


async def test_a_product_is_created_restocked_and_edited(oms: OmsClient) -> None:
    product = await oms.create_product(
        on_hand=5, unit_price=990, low_stock_threshold=2, reorder_quantity=20
    )
    assert (product["available"], product["reserved"], product["low_stock"]) == (5, 0, False)
    url = f"{oms.urls['inventory']}/products/{product['sku']}"

    restocked = await oms.http.post(f"{url}/restock", json={"quantity": 7}, headers=oms.admin())
    assert restocked.status_code == 200
    assert restocked.json()["on_hand"] == 12

    edited = await oms.http.patch(
        url, json={"unit_price": 1090, "name": "Big mug"}, headers=oms.admin()
    )
    assert edited.status_code == 200
    assert (edited.json()["unit_price"], edited.json()["name"]) == (1090, "Big mug")
    assert (await oms.product(product["sku"]))["unit_price"] == 1090


async def test_a_created_product_is_named_by_its_location_header(oms: OmsClient) -> None:
    sku = f"SKU-{uuid.uuid4().hex[:10]}"
    created = await oms.http.post(
        f"{oms.urls['inventory']}/products",
        headers=oms.admin(),
        json={"sku": sku, "name": "Mug", "unit_price": 990, "currency": "EUR", "on_hand": 3},
    )
    assert created.status_code == 201
    assert created.headers["location"] == f"/products/{sku}"
    found = await oms.http.get(
        f"{oms.urls['inventory']}{created.headers['location']}", headers=oms.admin()
    )
    assert (found.status_code, found.json()["sku"]) == (200, sku)


async def test_a_duplicate_sku_is_a_conflict_naming_the_field(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=1)
    response = await oms.http.post(
        f"{oms.urls['inventory']}/products",
        headers=oms.admin(),
        json={"sku": product["sku"], "name": "x", "unit_price": 1, "currency": "EUR", "on_hand": 1},
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/product-exists"
    assert response.json()["field"] == "sku"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "EURO"}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"on_hand": -1}, "on_hand"),
        ({"unit_price": 12.5}, "unit_price"),
        ({"sku": "has space"}, "sku"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_product_input_is_a_422_naming_the_field(
    oms: OmsClient, change: dict[str, object], field: str
) -> None:
    body = {
        "sku": f"SKU-{uuid.uuid4().hex[:8]}",
        "name": "Mug",
        "unit_price": 100,
        "currency": "EUR",
        "on_hand": 1,
        **change,
    }
    response = await oms.http.post(
        f"{oms.urls['inventory']}/products", json=body, headers=oms.admin()
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]]
    missing = await oms.http.get(
        f"{oms.urls['inventory']}/products/{body['sku']}", headers=oms.admin()
    )
    assert missing.status_code == 404


async def test_stock_cannot_be_corrected_below_what_orders_hold(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=5)
    order = await oms.place([(product["sku"], 3)])
    await oms.wait_for_order(order["id"], "fulfilling", "paid")
    response = await oms.http.patch(
        f"{oms.urls['inventory']}/products/{product['sku']}",
        json={"on_hand": 2},
        headers=oms.admin(),
    )
    assert response.status_code == 409
    assert response.json()["field"] == "on_hand"
    assert (await oms.product(product["sku"]))["on_hand"] == 5


async def test_paging_through_products_returns_each_exactly_once_in_sku_order(
    oms: OmsClient,
) -> None:
    created = {(await oms.create_product(on_hand=1))["sku"] for _ in range(5)}
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (
            await oms.http.get(
                f"{oms.urls['inventory']}/products", params=params, headers=oms.admin()
            )
        ).json()
        seen += [item["sku"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert created <= set(seen)
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen))


async def test_low_stock_products_can_be_listed(oms: OmsClient) -> None:
    low = await oms.create_product(on_hand=2, low_stock_threshold=3)
    fine = await oms.create_product(on_hand=9, low_stock_threshold=3)
    page = (
        await oms.http.get(
            f"{oms.urls['inventory']}/products",
            params={"low_stock": "true", "limit": 200},
            headers=oms.admin(),
        )
    ).json()
    skus = {item["sku"] for item in page["items"]}
    assert low["sku"] in skus
    assert fine["sku"] not in skus
    assert all(item["low_stock"] for item in page["items"])


async def test_products_need_an_admin_token(oms: OmsClient) -> None:
    url = f"{oms.urls['inventory']}/products"
    assert (await oms.http.get(url)).status_code == 401
    assert (await oms.http.get(url, headers={"Authorization": "Bearer forged"})).status_code == 401
    forbidden = await oms.http.get(url, headers=oms.as_customer())
    assert forbidden.status_code == 403
    assert forbidden.json()["type"] == "/problems/forbidden"


async def test_the_stock_ledger_lists_every_change_with_its_reason(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=6)
    url = f"{oms.urls['inventory']}/products/{product['sku']}"
    await oms.http.post(f"{url}/restock", json={"quantity": 4}, headers=oms.admin())
    await oms.http.patch(url, json={"on_hand": 9}, headers=oms.admin())
    order = await oms.place([(product["sku"], 2)])
    await oms.wait_for_order(order["id"], "fulfilling")
    page = (await oms.http.get(f"{url}/movements", headers=oms.admin())).json()
    assert [
        (m["reason"], m["on_hand_delta"], m["reserved_delta"], m["order_id"]) for m in page["items"]
    ] == [
        ("initial", 6, 0, None),
        ("restock", 4, 0, None),
        ("adjustment", -1, 0, None),
        ("reserve", 0, 2, order["id"]),
    ]
    missing = await oms.http.get(
        f"{oms.urls['inventory']}/products/NOPE/movements", headers=oms.admin()
    )
    assert missing.status_code == 404
