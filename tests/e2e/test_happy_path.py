"""One order from POST /orders to `completed`, through the real services."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from oms_devtools.client import OmsClient, eventually
from oms_devtools.stack import Stack

pytestmark = pytest.mark.e2e


async def test_an_order_travels_from_checkout_to_delivery(oms: OmsClient) -> None:
    mug = await oms.create_product(on_hand=10, unit_price=1250)
    tea = await oms.create_product(on_hand=5, unit_price=399)

    placed = await oms.place([(mug["sku"], 2), (tea["sku"], 1)])
    assert placed["status"] == "pending"
    assert placed["customer_id"] == oms.customer
    order_id = placed["id"]

    # Stock reserved, payment authorized, shipment created: waiting for the warehouse.
    order = await oms.wait_for_order(order_id, "fulfilling")
    assert order["total"] == 2 * 1250 + 399
    assert order["currency"] == "EUR"
    assert {i["sku"]: i["unit_price"] for i in order["items"]} == {
        mug["sku"]: 1250,
        tea["sku"]: 399,
    }
    reserved_mug = await oms.product(mug["sku"])
    assert (reserved_mug["on_hand"], reserved_mug["reserved"], reserved_mug["available"]) == (
        10,
        2,
        8,
    )
    payment = await oms.payment_of(order_id)
    assert payment is not None
    assert (payment["status"], payment["authorized_amount"]) == ("authorized", order["total"])
    shipment = await oms.shipment_of(order_id)
    assert shipment is not None
    assert shipment["status"] == "created"
    assert shipment["tracking_number"] is None
    assert {(line["sku"], line["quantity"]) for line in shipment["lines"]} == {
        (mug["sku"], 2),
        (tea["sku"], 1),
    }

    # Warehouse staff dispatch: stock leaves, money is captured, order ships.
    dispatched = await oms.dispatch(shipment["id"])
    assert dispatched.status_code == 200
    tracking_number = dispatched.json()["tracking_number"]
    assert tracking_number
    order = await oms.wait_for_order(order_id, "shipped")
    assert order["tracking_number"] == tracking_number

    captured = await oms.wait_for_payment(order_id, "captured")
    assert captured["captured_amount"] == order["total"]
    mug_after = await eventually(
        lambda: oms.product(mug["sku"]), lambda p: p["reserved"] == 0, 10, "stock commit"
    )
    assert (mug_after["on_hand"], mug_after["available"]) == (8, 8)
    assert (await oms.product(tea["sku"]))["on_hand"] == 4

    # The carrier reports delivery; the order completes.
    delivered = await oms.tracking_event(shipment["id"], "delivered", datetime.now(UTC).isoformat())
    assert delivered.status_code == 202
    order = await oms.wait_for_order(order_id, "completed")

    steps = [entry["step"] for entry in await oms.history(order_id)]
    for step in (
        "order_placed",
        "order_awaiting_payment",
        "order_paid",
        "order_shipped",
        "stock_committed",
        "payment_captured",
        "order_completed",
    ):
        assert step in steps
    assert steps[0] == "order_placed" and steps[-1] == "order_completed"

    public = await oms.http.get(f"{oms.urls['shipping']}/tracking/{tracking_number}")
    assert public.status_code == 200
    assert public.json()["status"] == "delivered"
    assert "address" not in public.json()


async def test_auto_dispatch_ships_without_warehouse_staff(oms: OmsClient, stack: Stack) -> None:
    async with stack.restarted_with("shipping", {"OMS_AUTO_DISPATCH": "true"}):
        product = await oms.create_product(on_hand=3)
        placed = await oms.place([(product["sku"], 1)])
        order = await oms.wait_for_order(placed["id"], "shipped")
        assert order["tracking_number"]
        captured = await oms.wait_for_payment(order["id"], "captured")
        assert captured["captured_amount"] == 1000
        assert (
            await eventually(
                lambda: oms.product(product["sku"]), lambda p: p["on_hand"] == 2, 10, "stock commit"
            )
        )["reserved"] == 0
