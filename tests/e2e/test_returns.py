"""Returns end to end: a customer sends goods back, the warehouse receives them,
stock and money follow; every refusal, race and failure on the way."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest

from oms_contracts import COMMANDS_EXCHANGE, Envelope
from oms_contracts import payment as payment_msgs
from oms_devtools.client import OmsClient, eventually

from .helpers import (
    EventRecorder,
    a_customer,
    dispatch_and_wait_for_capture,
    fulfilling_order,
    gateway_faults,
)

pytestmark = pytest.mark.e2e


async def shipped(oms: OmsClient, items: list[tuple[str, int]], token: str = "tok_ok") -> str:
    order_id, _ = await fulfilling_order(oms, items, token)
    await dispatch_and_wait_for_capture(oms, order_id)
    return order_id


async def ask_return(
    oms: OmsClient,
    order_id: str,
    items: list[tuple[str, int]],
    *,
    customer: str | None = None,
    key: str | None = None,
) -> httpx.Response:
    return await oms.http.post(
        f"{oms.urls['order']}/orders/{order_id}/returns",
        headers={**oms.as_customer(customer), **({"Idempotency-Key": key} if key else {})},
        json={"items": [{"sku": s, "quantity": q} for s, q in items], "reason": "too small"},
    )


async def a_return(oms: OmsClient, return_id: str) -> dict[str, Any]:
    answer = await oms.http.get(
        f"{oms.urls['order']}/returns/{return_id}", headers=oms.as_customer()
    )
    answer.raise_for_status()
    return dict(answer.json())


async def return_reaches(oms: OmsClient, return_id: str, status: str) -> dict[str, Any]:
    return await eventually(
        lambda: a_return(oms, return_id),
        lambda r: r["status"] == status,
        30,
        f"return {return_id} {status}",
    )


async def labelled(oms: OmsClient, return_id: str) -> dict[str, Any]:
    return await eventually(
        lambda: a_return(oms, return_id),
        lambda r: r["return_tracking_number"] is not None,
        20,
        "the return label",
    )


async def receive(
    oms: OmsClient, return_id: str, lines: list[tuple[str, int, str]]
) -> httpx.Response:
    return await oms.http.post(
        f"{oms.urls['shipping']}/returns/{return_id}/receive",
        headers=oms.admin(),
        json={"items": [{"sku": s, "quantity": q, "condition": c} for s, q, c in lines]},
    )


async def payment(oms: OmsClient, order_id: str) -> dict[str, Any]:
    found = await oms.payment_of(order_id)
    assert found is not None
    return found


async def test_a_return_is_labelled_received_and_refunded_with_stock_and_money_exact(
    oms: OmsClient,
) -> None:
    mug = await oms.create_product(on_hand=10, unit_price=1250)
    order_id = await shipped(oms, [(mug["sku"], 3)])

    asked = await ask_return(oms, order_id, [(mug["sku"], 2)])
    assert asked.status_code == 202, asked.text
    return_id = asked.json()["id"]
    assert (await labelled(oms, return_id))["status"] == "approved"

    received = await receive(
        oms, return_id, [(mug["sku"], 1, "resellable"), (mug["sku"], 1, "damaged")]
    )
    assert received.status_code == 200, received.text

    refunded = await return_reaches(oms, return_id, "refunded")
    assert (refunded["refund_amount"], refunded["refunded_amount"]) == (2500, 2500)
    money = await eventually(
        lambda: payment(oms, order_id),
        lambda p: p["refunded_amount"] == 2500,
        20,
        "the payment's refund",
    )
    assert money["captured_amount"] == 3750
    stock = await eventually(
        lambda: oms.product(mug["sku"]),
        lambda p: p["on_hand"] == 8,
        20,
        "the resellable mug back on hand",
    )
    assert (stock["on_hand"], stock["reserved"], stock["damaged"]) == (8, 0, 1)
    steps = [entry["step"] for entry in await oms.history(order_id)]
    for step in (
        "return_requested",
        "return_approved",
        "return_label_created",
        "return_received",
        "refund_requested",
        "stock_returned",
        "return_refunded",
    ):
        assert step in steps, (step, steps)


async def test_more_than_shipped_is_refused_also_when_two_requests_race(oms: OmsClient) -> None:
    mug = await oms.create_product(on_hand=10)
    order_id = await shipped(oms, [(mug["sku"], 2)])

    too_many = await ask_return(oms, order_id, [(mug["sku"], 3)])
    assert too_many.status_code == 409
    assert too_many.json()["type"] == "/problems/exceeds-returnable"
    assert too_many.json()["skus"] == [mug["sku"]]

    racing = await asyncio.gather(*(ask_return(oms, order_id, [(mug["sku"], 2)]) for _ in range(5)))
    assert sorted(r.status_code for r in racing) == [202, 409, 409, 409, 409]
    listed = await oms.http.get(
        f"{oms.urls['order']}/orders/{order_id}/returns", headers=oms.as_customer()
    )
    assert [r["status"] for r in listed.json()["items"]] == ["approved"]


async def test_someone_elses_order_is_not_found_and_an_unshipped_one_takes_no_return(
    oms: OmsClient,
) -> None:
    mug = await oms.create_product(on_hand=10)
    order_id = await shipped(oms, [(mug["sku"], 1)])
    stranger = await ask_return(oms, order_id, [(mug["sku"], 1)], customer=a_customer("eve"))
    assert stranger.status_code == 404

    waiting, _ = await fulfilling_order(oms, [(mug["sku"], 1)])
    not_shipped = await ask_return(oms, waiting, [(mug["sku"], 1)])
    assert not_shipped.status_code == 409
    assert not_shipped.json()["type"] == "/problems/order-not-shipped"

    malformed = await oms.http.post(
        f"{oms.urls['order']}/orders/{order_id}/returns",
        headers=oms.as_customer(),
        json={"items": [{"sku": mug["sku"], "quantity": 0}], "reason": "x"},
    )
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "items[0].quantity"


async def test_asking_again_with_the_same_key_answers_the_same_return(oms: OmsClient) -> None:
    mug = await oms.create_product(on_hand=10)
    order_id = await shipped(oms, [(mug["sku"], 2)])
    key = str(uuid.uuid4())

    first = await ask_return(oms, order_id, [(mug["sku"], 1)], key=key)
    again = await ask_return(oms, order_id, [(mug["sku"], 1)], key=key)

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    # Both answers name the one return, and it can be read there.
    location = f"/returns/{first.json()['id']}"
    assert first.headers["location"] == again.headers["location"] == location
    found = await oms.http.get(f"{oms.urls['order']}{location}", headers=oms.admin())
    assert (found.status_code, found.json()["id"]) == (200, first.json()["id"])
    other_body = await ask_return(oms, order_id, [(mug["sku"], 2)], key=key)
    assert other_body.status_code == 409


async def test_a_return_cancelled_before_receipt_refunds_nothing_and_cannot_be_received(
    oms: OmsClient,
) -> None:
    mug = await oms.create_product(on_hand=10)
    order_id = await shipped(oms, [(mug["sku"], 1)])
    return_id = (await ask_return(oms, order_id, [(mug["sku"], 1)])).json()["id"]
    await labelled(oms, return_id)

    cancelled = await oms.http.post(
        f"{oms.urls['order']}/returns/{return_id}/cancel", headers=oms.as_customer()
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"

    await eventually(
        lambda: oms.shipping_return(return_id),
        lambda parcel: parcel["status"] == "cancelled",
        20,
        "shipping to void the label",
    )
    refused = await receive(oms, return_id, [(mug["sku"], 1, "resellable")])
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/return-cancelled"
    assert (await payment(oms, order_id))["refunded_amount"] == 0


async def test_a_redelivered_refund_command_refunds_once(
    oms: OmsClient, test_amqp_url: str, event_recorder: EventRecorder
) -> None:
    mug = await oms.create_product(on_hand=10, unit_price=1000)
    order_id = await shipped(oms, [(mug["sku"], 2)])
    return_id = (await ask_return(oms, order_id, [(mug["sku"], 1)])).json()["id"]
    await labelled(oms, return_id)
    assert (await receive(oms, return_id, [(mug["sku"], 1, "resellable")])).status_code == 200
    await return_reaches(oms, return_id, "refunded")

    # The same refund asked for again (a re-sent command, with a message id of its own).
    connection = await aio_pika.connect_robust(test_amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(COMMANDS_EXCHANGE)
        command = payment_msgs.RefundReturn(
            order_id=order_id, return_id=return_id, amount=1000, attempt=0
        )
        envelope = Envelope.wrap(command, correlation_id=order_id, causation_id=None)
        await exchange.publish(
            aio_pika.Message(
                envelope.model_dump_json().encode(), message_id=str(envelope.message_id)
            ),
            routing_key=command.routing_key,
        )
    finally:
        await connection.close()

    # Payment answers the re-sent command with the refund it made the first time...
    answers = await event_recorder.wait_for(
        "payment.refunded", lambda d: d.get("return_id") == return_id, count=2, timeout=20
    )
    assert {answer["refund_id"] for answer in answers} == {answers[0]["refund_id"]}
    # ...and no money moved a second time.
    pay = await payment(oms, order_id)
    refunds = await oms.http.get(
        f"{oms.urls['payment']}/payments/{pay['id']}/refunds", headers=oms.admin()
    )
    assert [r["amount"] for r in refunds.json()] == [1000]
    assert pay["refunded_amount"] == 1000


async def test_a_refund_the_gateway_refuses_needs_an_operator_whose_retry_finishes_it(
    oms: OmsClient,
) -> None:
    mug = await oms.create_product(on_hand=10, unit_price=800)
    order_id = await shipped(oms, [(mug["sku"], 1)], token="tok_refund_refused")
    return_id = (await ask_return(oms, order_id, [(mug["sku"], 1)])).json()["id"]
    await labelled(oms, return_id)
    assert (await receive(oms, return_id, [(mug["sku"], 1, "damaged")])).status_code == 200

    parked = await return_reaches(oms, return_id, "requires_attention")
    assert "refund_refused" in (parked["status_reason"] or "")
    listed = await oms.http.get(
        f"{oms.urls['order']}/admin/returns",
        params={"state": "requires_attention"},
        headers=oms.admin(),
    )
    assert return_id in [r["id"] for r in listed.json()["items"]]

    async with gateway_faults(oms, refund_refused_token_active=False):
        retried = await oms.http.post(
            f"{oms.urls['order']}/admin/returns/{return_id}/retry", headers=oms.admin()
        )
        assert retried.status_code == 200, retried.text
        done = await return_reaches(oms, return_id, "refunded")
    assert done["refunded_amount"] == 800
    assert (await payment(oms, order_id))["refunded_amount"] == 800


async def test_a_return_of_a_parcel_from_a_second_location_restocks_that_location(
    oms: OmsClient,
) -> None:
    berlin, paris = await oms.create_location(), await oms.create_location()
    mug = await oms.create_product(stock={berlin["code"]: 5})
    tea = await oms.create_product(stock={paris["code"]: 5}, unit_price=300)
    order = await oms.place([(mug["sku"], 1), (tea["sku"], 2)])
    await oms.wait_for_order(order["id"], "fulfilling")
    for parcel in await oms.shipments(order_id=order["id"]):
        assert (await oms.dispatch(parcel["id"])).status_code == 200
    await oms.wait_for_order(order["id"], "shipped")

    return_id = (await ask_return(oms, order["id"], [(tea["sku"], 2)])).json()["id"]
    returned = await labelled(oms, return_id)
    assert [(i["sku"], i["location"]) for i in returned["items"]] == [(tea["sku"], paris["code"])]
    assert (await receive(oms, return_id, [(tea["sku"], 2, "resellable")])).status_code == 200
    await return_reaches(oms, return_id, "refunded")

    stock = await oms.stock_at(tea["sku"])
    assert stock[paris["code"]]["on_hand"] == 5
    assert (await oms.stock_at(mug["sku"]))[berlin["code"]]["on_hand"] == 4


async def test_an_approved_return_whose_parcel_never_comes_expires_without_refund(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    mug = await oms.create_product(on_hand=10)
    order_id = await shipped(oms, [(mug["sku"], 1)])
    return_id = (await ask_return(oms, order_id, [(mug["sku"], 1)])).json()["id"]
    await labelled(oms, return_id)

    # As if OMS_RETURN_RECEIVE_DAYS had gone by.
    await db.execute(
        "UPDATE orders.returns SET deadline_at = $2 WHERE id = $1::uuid",
        return_id,
        datetime.now(UTC),
    )

    expired = await return_reaches(oms, return_id, "cancelled")
    assert expired["status_reason"] == "return_not_received"
    assert (await payment(oms, order_id))["refunded_amount"] == 0
