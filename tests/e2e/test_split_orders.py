"""Orders shipped from several stock locations, end to end: a parcel per location,
dispatched, captured and delivered parcel by parcel."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from oms_devtools.client import OmsClient, eventually

from .helpers import a_customer, statuses

pytestmark = pytest.mark.e2e


async def parcels_of(oms: OmsClient, order_id: str, count: int) -> dict[str, dict[str, Any]]:
    """The order's parcels by location, once each has its dispatch note."""
    order = await eventually(
        lambda: oms.order(order_id),
        lambda o: (
            len(o["fulfillments"]) == count and all(p["shipment_id"] for p in o["fulfillments"])
        ),
        20,
        f"{count} parcels with dispatch notes",
    )
    return {parcel["location"]: parcel for parcel in order["fulfillments"]}


async def dispatch(oms: OmsClient, shipment_id: str) -> None:
    answer = await oms.dispatch(shipment_id)
    assert answer.status_code == 200, answer.text


@dataclass(frozen=True)
class SplitOrder:
    """Two mugs from Berlin (1000 each) and a tea from Paris (300): fulfilling, a parcel
    per location, each with its dispatch note."""

    id: str
    berlin: str  # location codes
    paris: str
    mug: str  # SKUs
    tea: str
    parcels: dict[str, dict[str, Any]]  # by location code


async def split_order(oms: OmsClient) -> SplitOrder:
    berlin, paris = await oms.create_location(), await oms.create_location(country="FR")
    mug = await oms.create_product(stock={berlin["code"]: 5}, unit_price=1000)
    tea = await oms.create_product(stock={paris["code"]: 5}, unit_price=300)
    order = await oms.place([(mug["sku"], 2), (tea["sku"], 1)])
    await oms.wait_for_order(order["id"], "fulfilling")
    parcels = await parcels_of(oms, order["id"], 2)
    return SplitOrder(order["id"], berlin["code"], paris["code"], mug["sku"], tea["sku"], parcels)


async def test_an_order_split_over_two_locations_ships_and_is_paid_for_parcel_by_parcel(
    oms: OmsClient,
) -> None:
    split = await split_order(oms)
    assert [(i["sku"], i["quantity"]) for i in split.parcels[split.berlin]["items"]] == [
        (split.mug, 2)
    ]

    await dispatch(oms, split.parcels[split.berlin]["shipment_id"])
    await oms.wait_for_order(split.id, "partially_shipped")
    payment = await eventually(
        lambda: oms.payment_of(split.id),
        lambda p: p is not None and p["captured_amount"] == 2000,
        20,
        "the Berlin parcel's capture",
    )
    assert payment["status"] == "partially_captured"
    assert (await oms.stock_at(split.mug))[split.berlin]["on_hand"] == 3
    assert (await oms.stock_at(split.tea))[split.paris]["on_hand"] == 5

    await dispatch(oms, split.parcels[split.paris]["shipment_id"])
    await oms.wait_for_order(split.id, "shipped")
    payment = await oms.wait_for_payment(split.id, "captured")
    assert payment["captured_amount"] == 2300
    await eventually(
        lambda: oms.stock_at(split.tea),
        lambda stock: stock[split.paris]["on_hand"] == 4,
        20,
        "the Paris parcel's stock committed",
    )
    shipped = await oms.order(split.id)
    assert {p["location"]: p["status"] for p in shipped["fulfillments"]} == {
        split.berlin: "dispatched",
        split.paris: "dispatched",
    }
    assert shipped["tracking_number"] == shipped["fulfillments"][0]["tracking_number"]

    now = datetime.now(UTC).isoformat()
    for parcel in split.parcels.values():
        delivered = await oms.tracking_event(parcel["shipment_id"], "delivered", now)
        assert delivered.status_code == 202, delivered.text
    await oms.wait_for_order(split.id, "completed")


async def test_one_location_that_holds_the_whole_order_ships_it_alone(oms: OmsClient) -> None:
    near = await oms.create_location(priority=1)
    far = await oms.create_location(priority=2)
    mug = await oms.create_product(stock={near["code"]: 5, far["code"]: 5})
    tea = await oms.create_product(stock={far["code"]: 5})

    order = await oms.place([(mug["sku"], 1), (tea["sku"], 1)])
    await oms.wait_for_order(order["id"], "fulfilling")

    (parcel,) = (await parcels_of(oms, order["id"], 1)).values()
    assert parcel["location"] == far["code"]
    assert (await oms.stock_at(mug["sku"]))[near["code"]]["reserved"] == 0


async def test_an_order_no_location_serving_its_country_can_fill_is_rejected(
    oms: OmsClient,
) -> None:
    madrid = await oms.create_location(country="ES", serves=["ES", "PT"])
    mug = await oms.create_product(stock={madrid["code"]: 10})

    order = await oms.place([(mug["sku"], 1)])  # to Berlin
    rejected = await oms.wait_for_order(order["id"], "rejected")

    assert rejected["status_reason"] == "out_of_stock"
    assert (await oms.stock_at(mug["sku"]))[madrid["code"]]["reserved"] == 0


async def test_cancelling_after_the_first_parcel_left_stops_the_other_and_keeps_what_shipped(
    oms: OmsClient,
) -> None:
    berlin, paris = await oms.create_location(), await oms.create_location()
    mug = await oms.create_product(stock={berlin["code"]: 5}, unit_price=1000)
    tea = await oms.create_product(stock={paris["code"]: 5}, unit_price=300)
    order = await oms.place([(mug["sku"], 1), (tea["sku"], 2)])
    await oms.wait_for_order(order["id"], "fulfilling")
    parcels = await parcels_of(oms, order["id"], 2)
    await dispatch(oms, parcels[berlin["code"]]["shipment_id"])
    await oms.wait_for_order(order["id"], "partially_shipped")

    cancelled = await oms.cancel(order["id"])
    assert cancelled.status_code == 202, cancelled.text

    done = await oms.wait_for_order(order["id"], "shipped")
    assert done["status_detail"]["cancelled_lines"] == [{"sku": tea["sku"], "quantity": 2}]
    assert {p["location"]: p["status"] for p in done["fulfillments"]} == {
        berlin["code"]: "dispatched",
        paris["code"]: "cancelled",
    }
    payment = await eventually(
        lambda: oms.payment_of(order["id"]),
        lambda p: p is not None and p["captured_amount"] == 1000 and p["status"] == "captured",
        20,
        "the kept parcel captured and the rest released",
    )
    assert payment["refunded_amount"] == 0
    tea_stock = await eventually(
        lambda: oms.stock_at(tea["sku"]),
        lambda stock: stock[paris["code"]]["reserved"] == 0,
        20,
        "the stopped parcel's stock released",
    )
    assert tea_stock[paris["code"]]["on_hand"] == 5
    assert (await oms.stock_at(mug["sku"]))[berlin["code"]]["on_hand"] == 4
    stopped = await oms.shipment(parcels[paris["code"]]["shipment_id"])
    assert stopped["status"] == "cancelled"


async def test_an_address_the_allocated_locations_cannot_ship_to_is_refused(
    oms: OmsClient,
) -> None:
    germany_only = await oms.create_location(serves=["DE"])
    mug = await oms.create_product(stock={germany_only["code"]: 5})
    order = await oms.place([(mug["sku"], 1)])
    await oms.wait_for_order(order["id"], "fulfilling")

    refused = await oms.http.patch(
        f"{oms.urls['order']}/orders/{order['id']}",
        headers=oms.as_customer(),
        json={
            "shipping_address": {
                "name": "Ada",
                "line1": "1 Rue de Rivoli",
                "city": "Paris",
                "postal_code": "75001",
                "country": "FR",
            }
        },
    )

    assert refused.status_code == 409, refused.text
    assert refused.json()["type"] == "/problems/order-not-modifiable"
    assert (await oms.order(order["id"]))["shipping_address"]["country"] == "DE"


async def test_changing_the_items_allocates_them_afresh_and_the_dispatch_notes_follow(
    oms: OmsClient,
) -> None:
    berlin, paris = await oms.create_location(), await oms.create_location()
    mug = await oms.create_product(stock={berlin["code"]: 5})
    tea = await oms.create_product(stock={paris["code"]: 5})
    order = await oms.place([(mug["sku"], 1)])
    await oms.wait_for_order(order["id"], "fulfilling")

    changed = await oms.http.patch(
        f"{oms.urls['order']}/orders/{order['id']}",
        headers=oms.as_customer(),
        json={"items": [{"sku": mug["sku"], "quantity": 1}, {"sku": tea["sku"], "quantity": 2}]},
    )
    assert changed.status_code == 202, changed.text

    applied = await eventually(
        lambda: oms.order(order["id"]),
        lambda o: o["status_detail"].get("item_change", {}).get("status") == "applied",
        30,
        "the item change applied",
    )
    assert sorted(p["location"] for p in applied["fulfillments"]) == sorted(
        [berlin["code"], paris["code"]]
    )
    parcels = await parcels_of(oms, order["id"], 2)
    note = await oms.shipment(parcels[paris["code"]]["shipment_id"])
    assert [(line["sku"], line["quantity"]) for line in note["lines"]] == [(tea["sku"], 2)]
    assert (await oms.stock_at(tea["sku"]))[paris["code"]]["reserved"] == 2


async def test_200_concurrent_orders_over_25_plus_25_units_sell_exactly_50(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    first, second = await oms.create_location(), await oms.create_location()
    mug = await oms.create_product(stock={first["code"]: 25, second["code"]: 25})

    answers = await asyncio.gather(
        *(oms.place_order([(mug["sku"], 1)], customer=a_customer("rush")) for _ in range(200))
    )
    assert [answer.status_code for answer in answers] == [202] * 200
    order_ids = [answer.json()["id"] for answer in answers]
    settled = await eventually(
        lambda: statuses(db, order_ids),
        lambda found: all(s in ("fulfilling", "rejected") for s in found.values()),
        120,
        "every order reserved or rejected",
    )

    assert Counter(settled.values()) == {"fulfilling": 50, "rejected": 150}
    stock = await oms.stock_at(mug["sku"])
    assert {code: (s["on_hand"], s["reserved"]) for code, s in stock.items()} == {
        first["code"]: (25, 25),
        second["code"]: (25, 25),
    }


async def test_both_parcels_lost_at_once_cancel_the_order_and_refund_everything(
    oms: OmsClient,
) -> None:
    split = await split_order(oms)
    for parcel in split.parcels.values():
        await dispatch(oms, parcel["shipment_id"])
    await oms.wait_for_order(split.id, "shipped")
    await oms.wait_for_payment(split.id, "captured")

    # The carrier reports both lost together: the second report arrives while the
    # first parcel's money is on its way back.
    failures = await asyncio.gather(
        *(
            oms.http.post(
                f"{oms.urls['shipping']}/shipments/{parcel['shipment_id']}/fail",
                json={"reason": "lost_in_transit"},
                headers=oms.admin(),
            )
            for parcel in split.parcels.values()
        )
    )
    assert [answer.status_code for answer in failures] == [200, 200]

    cancelled = await oms.wait_for_order(split.id, "cancelled")
    assert {p["status"] for p in cancelled["fulfillments"]} == {"failed"}
    payment = await eventually(
        lambda: oms.payment_of(split.id),
        lambda p: p is not None and p["refunded_amount"] == 2300,
        20,
        "every captured cent refunded",
    )
    assert payment["status"] == "refunded"
