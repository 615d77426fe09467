"""What the console's browser tests set up through the services' own APIs before
staff take over: orders at a given point (split over two locations, shipped),
returns asked for by the customer, and a way to wait for a page to show a state."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from playwright.async_api import Locator, Page

from oms_devtools.client import OmsClient, eventually


async def until_shows(page: Page, locator: Locator, text: str, timeout: float = 30.0) -> None:
    """Reload the page until `locator` reads `text` (as staff would: the console
    does not push state changes to its pages)."""
    deadline = time.monotonic() + timeout
    while True:
        if await locator.count() and (await locator.first.inner_text()).strip() == text:
            return
        assert time.monotonic() < deadline, f"the page never showed {text!r}"
        await asyncio.sleep(0.3)
        await page.reload()


async def split_order(oms: OmsClient, unit_price: int = 1000) -> dict[str, Any]:
    """An order of a mug stocked only at one new location and tea only at another:
    two parcels, each with its dispatch note. Returns the order with `locations`
    (the mug's first) and `skus` (same order)."""
    first, second = await oms.create_location(), await oms.create_location(country="FR")
    mug = await oms.create_product(stock={first["code"]: 5}, unit_price=unit_price)
    tea = await oms.create_product(stock={second["code"]: 5}, unit_price=300)
    placed = await oms.place([(mug["sku"], 2), (tea["sku"], 1)])
    order = await eventually(
        lambda: oms.order(placed["id"]),
        lambda o: (
            o["status"] == "fulfilling"
            and len(o["fulfillments"]) == 2
            and all(p["shipment_id"] for p in o["fulfillments"])
        ),
        30,
        "two parcels with their dispatch notes",
    )
    return {
        **order,
        "locations": [first["code"], second["code"]],
        "skus": [mug["sku"], tea["sku"]],
    }


async def dispatched(oms: OmsClient, order_id: str, final_status: str = "shipped") -> None:
    """Every parcel of the order dispatched through shipping's API, all captured."""
    for parcel in await oms.shipments(order_id=order_id, status="created"):
        answer = await oms.dispatch(parcel["id"])
        assert answer.status_code == 200, answer.text
    await oms.wait_for_order(order_id, final_status)
    await oms.wait_for_payment(order_id, "captured", timeout=30)


async def shipped_order_at(
    oms: OmsClient,
    location: str,
    quantity: int = 2,
    unit_price: int = 1250,
    token: str = "tok_ok",
) -> dict[str, Any]:
    """An order of `quantity` units of a fresh SKU stocked (10) at `location`, paid
    with `token`, dispatched and captured."""
    product = await oms.create_product(stock={location: 10}, unit_price=unit_price)
    placed = await oms.place([(product["sku"], quantity)], token=token)
    await eventually(
        lambda: oms.shipments(order_id=placed["id"], status="created"),
        lambda parcels: len(parcels) == 1,
        30,
        "the dispatch note",
    )
    await dispatched(oms, placed["id"])
    return {**(await oms.order(placed["id"])), "sku": product["sku"]}


async def request_return(
    oms: OmsClient, order_id: str, items: list[tuple[str, int]], reason: str
) -> dict[str, Any]:
    """The customer asks to send goods back, through the order API."""
    response = await oms.http.post(
        f"{oms.urls['order']}/orders/{order_id}/returns",
        headers={**oms.as_customer(), "Idempotency-Key": str(uuid.uuid4())},
        json={"items": [{"sku": s, "quantity": q} for s, q in items], "reason": reason},
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


async def a_return(oms: OmsClient, return_id: str) -> dict[str, Any]:
    response = await oms.http.get(f"{oms.urls['order']}/returns/{return_id}", headers=oms.admin())
    response.raise_for_status()
    return dict(response.json())


async def labelled(oms: OmsClient, return_id: str) -> dict[str, Any]:
    """The return once approved and shipping issued its label."""
    return await eventually(
        lambda: a_return(oms, return_id),
        lambda r: r["status"] == "approved" and bool(r["return_tracking_number"]),
        30,
        f"return {return_id} approved with a label",
    )


async def receive(oms: OmsClient, return_id: str, items: list[tuple[str, int, str]]) -> None:
    """The warehouse books a return in through shipping's API: (sku, quantity, condition)."""
    response = await oms.http.post(
        f"{oms.urls['shipping']}/returns/{return_id}/receive",
        headers=oms.admin(),
        json={"items": [{"sku": s, "quantity": q, "condition": c} for s, q, c in items]},
    )
    assert response.status_code == 200, response.text


async def gateway_can_refuse_refunds(oms: OmsClient) -> bool:
    """Whether this gateway simulator has `tok_refund_refused` (it comes with returns)."""
    response = await oms.http.get(f"{oms.urls['gateway']}/v1/_config")
    return response.status_code == 200 and "refund_refused_token_active" in response.json()


async def shipping_takes_returns(oms: OmsClient) -> bool:
    """Whether this shipping service has the returns API (it arrives with returns)."""
    response = await oms.http.get(f"{oms.urls['shipping']}/returns", headers=oms.admin())
    return response.status_code != 404
