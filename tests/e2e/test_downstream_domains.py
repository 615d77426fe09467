"""Each downstream service's own rules, through the real services: replenishment,
deliveries, reservation expiry; refunds, the circuit breaker, the audit trail and
the settlement report; the dispatch note and carrier tracking."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import aio_pika
import asyncpg
import pytest

from oms_contracts import COMMANDS_EXCHANGE, Envelope
from oms_contracts import inventory as inventory_msgs
from oms_devtools.client import OmsClient, eventually
from oms_devtools.stack import Stack

from .helpers import EventRecorder, fulfilling_order, shipped_order

pytestmark = pytest.mark.e2e

# -- inventory: low stock and replenishment ------------------------------------------


async def test_falling_to_the_threshold_alerts_once_and_requests_replenishment_once(
    oms: OmsClient, event_recorder: EventRecorder
) -> None:
    product = await oms.create_product(on_hand=10, low_stock_threshold=3, reorder_quantity=20)
    sku = product["sku"]
    first = (await oms.place([(sku, 7)]))["id"]
    await oms.wait_for_order(first, "fulfilling")
    [alert] = await event_recorder.wait_for("inventory.low_stock", lambda d: d["sku"] == sku)
    assert (alert["available"], alert["low_stock_threshold"]) == (3, 3)
    [request] = await event_recorder.wait_for(
        "inventory.replenishment_requested", lambda d: d["sku"] == sku
    )
    assert request["quantity"] == 20

    second = (await oms.place([(sku, 1)]))["id"]
    # A second alert would go out with the second reservation, so before this later
    # event of the same order (the recorder sees events in the order they were sent).
    await event_recorder.wait_for("order.fulfilling", lambda d: d["order_id"] == second)
    assert len(event_recorder.published("inventory.low_stock", lambda d: d["sku"] == sku)) == 1
    open_requests = (
        await oms.http.get(
            f"{oms.urls['inventory']}/replenishments", params={"limit": 200}, headers=oms.admin()
        )
    ).json()
    assert [r["quantity"] for r in open_requests["items"] if r["sku"] == sku] == [20]
    low = (
        await oms.http.get(
            f"{oms.urls['inventory']}/products",
            params={"low_stock": "true", "limit": 200},
            headers=oms.admin(),
        )
    ).json()
    assert sku in [item["sku"] for item in low["items"]]


async def test_a_delivery_closes_the_request_counts_once_and_rearms_the_alert(
    oms: OmsClient, event_recorder: EventRecorder
) -> None:
    product = await oms.create_product(on_hand=4, low_stock_threshold=5, reorder_quantity=10)
    sku = product["sku"]  # created under the threshold: alerted at once
    await event_recorder.wait_for("inventory.replenishment_requested", lambda d: d["sku"] == sku)
    url = f"{oms.urls['inventory']}/products/{sku}/restock"
    for _ in range(2):  # the same delivery note twice
        response = await oms.http.post(
            url, json={"quantity": 10, "reference": "DN-1"}, headers=oms.admin()
        )
        assert response.status_code == 200
        assert response.json()["on_hand"] == 14
    requests = (
        await oms.http.get(
            f"{oms.urls['inventory']}/replenishments",
            params={"status": "all", "limit": 200},
            headers=oms.admin(),
        )
    ).json()["items"]
    mine = [r for r in requests if r["sku"] == sku]
    assert [(r["status"], r["fulfilled_by"]) for r in mine] == [("fulfilled", "DN-1")]
    restocked = await event_recorder.wait_for("inventory.restocked", lambda d: d["sku"] == sku)
    assert [(r["quantity"], r["reference"]) for r in restocked] == [(10, "DN-1")]

    # Back above the threshold: the next crossing alerts again.
    order_id = (await oms.place([(sku, 10)]))["id"]
    await oms.wait_for_order(order_id, "fulfilling")
    alerts = await event_recorder.wait_for(
        "inventory.low_stock", lambda d: d["sku"] == sku, count=2
    )
    assert len(alerts) == 2


async def test_a_suppliers_restock_message_is_applied_once(
    oms: OmsClient, test_amqp_url: str, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=1)
    command = inventory_msgs.Restock(sku=product["sku"], quantity=5, reference="ASN-77")
    sent = []
    connection = await aio_pika.connect(test_amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(COMMANDS_EXCHANGE)
        for _ in range(2):  # two messages (different ids) for the same delivery
            envelope = Envelope.wrap(command)
            sent.append(envelope.message_id)
            await exchange.publish(
                aio_pika.Message(
                    envelope.model_dump_json().encode(), message_id=str(envelope.message_id)
                ),
                routing_key=command.routing_key,
            )
    # Both handled: inventory claims a message in the transaction that handles it.
    await eventually(
        lambda: db.fetchval(
            "SELECT count(*) FROM inventory.inbox WHERE message_id = ANY($1::uuid[])", sent
        ),
        lambda handled: handled == 2,
        10,
        "inventory to handle both messages",
    )
    assert (await oms.product(product["sku"]))["on_hand"] == 6


async def test_the_regular_check_alerts_when_the_threshold_was_raised_behind_its_back(
    oms: OmsClient, db: asyncpg.Connection, event_recorder: EventRecorder
) -> None:
    product = await oms.create_product(on_hand=5, low_stock_threshold=1, reorder_quantity=7)
    sku = product["sku"]
    # A change no event announced (e.g. made with SQL by an operator).
    await db.execute("UPDATE inventory.products SET low_stock_threshold = 8 WHERE sku = $1", sku)
    [alert] = await event_recorder.wait_for("inventory.low_stock", lambda d: d["sku"] == sku)
    assert alert["available"] == 5
    await event_recorder.wait_for("inventory.replenishment_requested", lambda d: d["sku"] == sku)


async def test_an_expired_reservation_is_released_and_the_order_compensated(
    oms: OmsClient, stack: Stack, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=5)
    async with stack.restarted_with("inventory", {"OMS_RESERVATION_TTL_SECONDS": "2"}):
        order_id = (await oms.place([(product["sku"], 3)]))["id"]
        order = await oms.wait_for_order(order_id, "cancelled", timeout=20)
    assert order["status_reason"] == "reservation_expired"
    assert (await oms.product(product["sku"]))["available"] == 5
    payment = await oms.payment_of(order_id)
    assert payment is not None and payment["status"] == "voided"
    shipment = await oms.shipment_of(order_id)
    assert shipment is not None and shipment["status"] == "cancelled"
    status = await db.fetchval(
        "SELECT status FROM inventory.reservations WHERE order_id = $1", order_id
    )
    assert status == "expired"


# -- payment: refunds, breaker, audit, settlement ---------------------------------------


async def test_refunds_may_be_partial_and_several_but_never_above_the_capture(
    oms: OmsClient, event_recorder: EventRecorder
) -> None:
    product = await oms.create_product(on_hand=5, unit_price=500)
    order_id, _ = await shipped_order(oms, [(product["sku"], 2)])
    payment = await oms.payment_of(order_id)
    assert payment is not None and payment["captured_amount"] == 1000
    url = f"{oms.urls['payment']}/payments/{payment['id']}/refund"

    first = await oms.http.post(
        url,
        json={"amount": 300, "reason": "damaged"},
        headers={**oms.admin(), "Idempotency-Key": "rf-1"},
    )
    assert first.status_code == 202
    again = await oms.http.post(
        url,
        json={"amount": 300, "reason": "damaged"},
        headers={**oms.admin(), "Idempotency-Key": "rf-1"},
    )
    assert again.json()["refund"]["id"] == first.json()["refund"]["id"]
    reused = await oms.http.post(
        url,
        json={"amount": 10, "reason": "other"},
        headers={**oms.admin(), "Idempotency-Key": "rf-1"},
    )
    assert reused.status_code == 409
    too_much = await oms.http.post(url, json={"amount": 701}, headers=oms.admin())
    assert too_much.status_code == 422
    assert too_much.json()["field"] == "amount"
    rest = await oms.http.post(url, json={"amount": 700}, headers=oms.admin())
    assert rest.status_code == 202

    refunded = await oms.wait_for_payment(order_id, "refunded")
    assert refunded["refunded_amount"] == 1000
    events = await event_recorder.wait_for(
        "payment.refunded", lambda d: d["order_id"] == order_id, count=2
    )
    assert sorted(e["amount"] for e in events) == [300, 700]
    [hold] = await oms.gateway_holds(payment["id"])
    assert (hold["captured_amount"], hold["refunded_amount"]) == (1000, 1000)
    none_left = await oms.http.post(url, json={"amount": 1}, headers=oms.admin())
    assert none_left.status_code == 409
    assert none_left.json()["type"] == "/problems/nothing-to-refund"


async def test_an_uncaptured_payment_has_nothing_to_refund(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=5)
    order_id, _ = await fulfilling_order(oms, [(product["sku"], 1)])
    payment = await oms.payment_of(order_id)
    assert payment is not None
    response = await oms.http.post(
        f"{oms.urls['payment']}/payments/{payment['id']}/refund",
        json={"amount": 100},
        headers=oms.admin(),
    )
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/nothing-to-refund"
    assert "authorized payment" in response.json()["detail"]
    refunds = await oms.http.get(
        f"{oms.urls['payment']}/payments/{payment['id']}/refunds", headers=oms.admin()
    )
    assert refunds.json() == []


async def test_every_gateway_call_is_kept_for_audit(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=5)
    order_id, _ = await shipped_order(oms, [(product["sku"], 1)])
    payment = await oms.payment_of(order_id)
    assert payment is not None
    calls = (
        await oms.http.get(
            f"{oms.urls['payment']}/payments/{payment['id']}/gateway-calls", headers=oms.admin()
        )
    ).json()
    assert [(c["operation"], c["status_code"]) for c in calls] == [
        ("authorize", 201),
        ("capture", 200),
    ]
    assert calls[0]["idempotency_key"] == f"{payment['id']}:authorize"
    assert calls[0]["request"]["amount"] == 1000
    assert calls[0]["response"]["status"] == "authorized"
    assert all(c["latency_ms"] > 0 for c in calls)


async def test_a_dead_gateway_fails_fast_behind_the_circuit_breaker(
    oms: OmsClient, stack: Stack, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=10)
    gateway_config = f"{oms.urls['gateway']}/v1/_config"
    breaker = {"OMS_GATEWAY_BREAKER_FAILURES": "2", "OMS_GATEWAY_BREAKER_RESET_SECONDS": "5"}
    # Each process has its own breaker: one payment process takes every attempt.
    async with stack.only_first_replica("payment", breaker):
        await oms.http.post(gateway_config, json={"timeout_rate": 1.0, "timeout_delay_seconds": 3})
        try:
            order_id = (await oms.place_order([(product["sku"], 1)])).json()["id"]
            order = await oms.wait_for_order(order_id, "cancelled", timeout=20)
        finally:
            await oms.http.post(gateway_config, json={"timeout_rate": 0.0})
        assert order["status_reason"] == "payment_unavailable"
        payment = await oms.payment_of(order_id)
        assert payment is not None
        errors = [
            row["error"]
            for row in await db.fetch(
                "SELECT error FROM payment.gateway_calls WHERE payment_id = $1::uuid "
                "AND operation = 'authorize' ORDER BY id",
                payment["id"],
            )
        ]
        # Two calls waited for their timeout; after that the breaker answered at once.
        assert len(errors) == 4
        assert all(e.startswith("circuit open") for e in errors[2:])

        await asyncio.sleep(5)  # the cool-down: a trial call goes through again
        healthy = (await oms.place_order([(product["sku"], 1)])).json()["id"]
        await oms.wait_for_order(healthy, "fulfilling", timeout=20)


async def test_the_settlement_report_sums_money_per_day_and_currency(oms: OmsClient) -> None:
    currency = "NOK"  # no other test settles in this currency
    product = await oms.create_product(on_hand=5, unit_price=400, currency=currency)
    order_id, _ = await shipped_order(oms, [(product["sku"], 2)])
    payment = await oms.payment_of(order_id)
    assert payment is not None
    await oms.http.post(
        f"{oms.urls['payment']}/payments/{payment['id']}/refund",
        json={"amount": 150},
        headers=oms.admin(),
    )
    await eventually(
        lambda: oms.payment_of(order_id), lambda p: p["refunded_amount"] == 150, 10, "the refund"
    )
    today = datetime.now(UTC).date()
    report = (
        await oms.http.get(
            f"{oms.urls['payment']}/reports/settlement",
            params={"from": str(today - timedelta(days=1)), "to": str(today)},
            headers=oms.admin(),
        )
    ).json()
    rows = [r for r in report["rows"] if r["currency"] == currency]
    assert rows == [
        {"day": str(today), "currency": currency, "captured": 800, "refunded": 150, "net": 650}
    ]
    backwards = await oms.http.get(
        f"{oms.urls['payment']}/reports/settlement",
        params={"from": str(today), "to": "2020-01-01"},
        headers=oms.admin(),
    )
    assert backwards.status_code == 422


# -- shipping: the dispatch note, the carrier webhook, public tracking ----------------


async def test_dispatch_announces_carrier_and_tracking_number_from_the_dispatch_note(
    oms: OmsClient, event_recorder: EventRecorder
) -> None:
    product = await oms.create_product(on_hand=5)
    order_id, note = await fulfilling_order(oms, [(product["sku"], 2)])
    assert note["lines"] == [{"sku": product["sku"], "quantity": 2}]
    assert note["address"]["city"] == "Berlin"
    response = await oms.dispatch(note["id"])
    assert response.status_code == 200
    dispatched = response.json()
    [announced] = await event_recorder.wait_for(
        "shipping.shipment_dispatched", lambda d: d["order_id"] == order_id
    )
    assert (announced["carrier"], announced["tracking_number"]) == (
        dispatched["carrier"],
        dispatched["tracking_number"],
    )


async def test_the_carrier_webhook_refuses_bad_signatures_and_bad_bodies(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=5)
    _, shipment_id = await shipped_order(oms, [(product["sku"], 1)])
    now = datetime.now(UTC).isoformat()
    missing = await oms.tracking_event(shipment_id, "in_transit", now, headers={})
    assert missing.status_code == 401
    forged = await oms.tracking_event(
        shipment_id,
        "in_transit",
        now,
        headers={**oms.sign(b"{}"), "webhook-signature": "v1,AAAA"},
    )
    assert forged.status_code == 401
    assert forged.json()["type"] == "/problems/bad-signature"
    assert forged.json()["field"] == "webhook-signature"
    unknown_status = await oms.tracking_event(shipment_id, "teleported", now)
    assert unknown_status.status_code == 422
    assert unknown_status.json()["errors"][0]["field"] == "status"
    unknown = await oms.tracking_event(str(uuid.uuid4()), "in_transit", now, tracking_number="X1")
    assert unknown.status_code == 404


async def test_tracking_events_are_idempotent_and_never_move_the_status_backwards(
    oms: OmsClient,
) -> None:
    product = await oms.create_product(on_hand=5)
    order_id, shipment_id = await shipped_order(oms, [(product["sku"], 1)])
    # Carrier times between the dispatch and now: within the clock skew allowed.
    start = datetime.now(UTC) - timedelta(minutes=4)

    def at(seconds: int) -> str:
        return (start + timedelta(seconds=seconds)).isoformat()

    await oms.tracking_event(shipment_id, "in_transit", at(10), location="Hub A")
    duplicate = await oms.tracking_event(shipment_id, "in_transit", at(10), location="Hub A")
    assert duplicate.status_code == 202
    await oms.tracking_event(shipment_id, "out_for_delivery", at(30), location="Berlin")
    late = await oms.tracking_event(shipment_id, "in_transit", at(20), location="Hub B")
    assert late.json()["status"] == "out_for_delivery"
    exception = await oms.tracking_event(shipment_id, "exception", at(40), location="Door")
    assert exception.json()["status"] == "exception"
    assert (await oms.order(order_id))["status"] == "shipped"
    delivered = await oms.tracking_event(shipment_id, "delivered", at(50), location="Door")
    timeline = [(e["status"], e["location"]) for e in delivered.json()["events"]]
    assert timeline == [
        ("in_transit", "Hub A"),
        ("in_transit", "Hub B"),
        ("out_for_delivery", "Berlin"),
        ("exception", "Door"),
        ("delivered", "Door"),
    ]
    await oms.wait_for_order(order_id, "completed")
    after = await oms.tracking_event(shipment_id, "in_transit", at(60), location="Hub C")
    assert after.json()["status"] == "delivered"


async def test_public_tracking_shows_the_journey_without_personal_data(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=5)
    order_id, shipment_id = await shipped_order(oms, [(product["sku"], 1)])
    await oms.tracking_event(shipment_id, "in_transit", datetime.now(UTC).isoformat())
    tracking_number = (await oms.order(order_id))["tracking_number"]
    response = await oms.http.get(f"{oms.urls['shipping']}/tracking/{tracking_number}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"tracking_number", "carrier", "status", "events"}
    assert body["status"] == "in_transit"
    text = response.text
    assert "Ada" not in text and "Main St" not in text and order_id not in text
    missing = await oms.http.get(f"{oms.urls['shipping']}/tracking/SIM000000000000")
    assert missing.status_code == 404
