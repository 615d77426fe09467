"""Every way an order can go wrong, through the real services: what the customer
sees, and that nothing is left reserved, held on a card, or shipped by mistake."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from oms_devtools.client import OmsClient, eventually
from oms_devtools.stack import Stack

from .helpers import dispatch_and_wait_for_capture, fulfilling_order, gateway_faults

pytestmark = pytest.mark.e2e


# -- helpers ---------------------------------------------------------------------


async def order_of(oms: OmsClient, skus: list[tuple[str, int]], token: str = "tok_ok") -> str:
    return str((await oms.place(skus, token))["id"])


async def assert_nothing_held(oms: OmsClient, db: asyncpg.Connection, order_id: str) -> None:
    reserved = await db.fetchval(
        "SELECT count(*) FROM inventory.reservations WHERE order_id = $1 AND status = 'reserved'",
        order_id,
    )
    assert reserved == 0, "stock still reserved"
    payment = await oms.payment_of(order_id)
    if payment is not None:
        assert payment["status"] != "authorized", "money still authorized"
        holds = await oms.gateway_holds(payment["id"])
        assert [h for h in holds if h["status"] == "authorized"] == [], "card hold left"


async def steps(oms: OmsClient, order_id: str) -> list[str]:
    return [entry["step"] for entry in await oms.history(order_id)]


# -- out of stock ----------------------------------------------------------------


async def test_one_short_line_rejects_the_whole_order_and_reserves_nothing(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    plenty = await oms.create_product(on_hand=5)
    scarce = await oms.create_product(on_hand=1)
    order_id = await order_of(oms, [(plenty["sku"], 2), (scarce["sku"], 3)])
    order = await oms.wait_for_order(order_id, "rejected")
    assert order["status_reason"] == "out_of_stock"
    assert order["status_detail"] == {"skus": [scarce["sku"]]}
    for sku in (plenty["sku"], scarce["sku"]):
        assert (await oms.product(sku))["reserved"] == 0
    assert await oms.payment_of(order_id) is None
    await assert_nothing_held(oms, db, order_id)


async def test_an_unknown_sku_rejects_the_order_naming_it(oms: OmsClient) -> None:
    known = await oms.create_product(on_hand=5)
    order_id = await order_of(oms, [(known["sku"], 1), ("NO-SUCH-SKU", 1)])
    order = await oms.wait_for_order(order_id, "rejected")
    assert (order["status_reason"], order["status_detail"]) == (
        "unknown_sku",
        {"skus": ["NO-SUCH-SKU"]},
    )
    assert (await oms.product(known["sku"]))["reserved"] == 0


# -- payment refused or unavailable ------------------------------------------------


@pytest.mark.parametrize(
    ("token", "decline_code"),
    [("tok_declined", "card_declined"), ("tok_insufficient_funds", "insufficient_funds")],
)
async def test_a_declined_payment_releases_the_reservation_and_cancels_the_order(
    oms: OmsClient, db: asyncpg.Connection, token: str, decline_code: str
) -> None:
    product = await oms.create_product(on_hand=5)
    order_id = await order_of(oms, [(product["sku"], 2)], token=token)
    order = await oms.wait_for_order(order_id, "cancelled")
    assert order["status_reason"] == "payment_declined"
    assert (await oms.product(product["sku"]))["available"] == 5
    payment = await oms.payment_of(order_id)
    assert payment is not None
    assert (payment["status"], payment["decline_code"]) == ("failed", decline_code)
    assert "stock_released" in await steps(oms, order_id)
    await assert_nothing_held(oms, db, order_id)


@pytest.mark.parametrize("token", ["tok_timeout", "tok_error"])
async def test_a_gateway_that_keeps_failing_is_retried_with_one_key_then_compensated(
    oms: OmsClient, db: asyncpg.Connection, token: str
) -> None:
    product = await oms.create_product(on_hand=5)
    order_id = await order_of(oms, [(product["sku"], 1)], token=token)
    order = await oms.wait_for_order(order_id, "cancelled", timeout=30)
    assert order["status_reason"] == "payment_unavailable"
    assert (await oms.product(product["sku"]))["reserved"] == 0
    payment = await oms.payment_of(order_id)
    assert payment is not None
    calls = await db.fetch(
        "SELECT idempotency_key FROM payment.gateway_calls "
        "WHERE payment_id = $1::uuid AND operation = 'authorize'",
        payment["id"],
    )
    assert len(calls) == 4  # OMS_GATEWAY_MAX_ATTEMPTS
    assert {call["idempotency_key"] for call in calls} == {f"{payment['id']}:authorize"}
    await assert_nothing_held(oms, db, order_id)


async def test_a_lost_gateway_answer_is_retried_and_the_card_is_held_only_once(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=5)
    order_id = await order_of(oms, [(product["sku"], 1)], token="tok_flaky")
    await oms.wait_for_order(order_id, "fulfilling", timeout=20)
    payment = await oms.payment_of(order_id)
    assert payment is not None and payment["status"] == "authorized"
    holds = await oms.gateway_holds(payment["id"])
    assert [h["status"] for h in holds] == ["authorized"]
    attempts = await db.fetchval(
        "SELECT count(*) FROM payment.gateway_calls "
        "WHERE payment_id = $1::uuid AND operation = 'authorize'",
        payment["id"],
    )
    assert attempts >= 2


# -- customer cancellation in every state ------------------------------------------


async def test_cancelling_a_pending_order_while_inventory_is_down_releases_it_later(
    oms: OmsClient, db: asyncpg.Connection, stack: Stack
) -> None:
    product = await oms.create_product(on_hand=5)
    async with stack.stopped("inventory"):
        order_id = await order_of(oms, [(product["sku"], 2)])
        cancel = await oms.cancel(order_id)
        assert cancel.status_code == 202
        assert cancel.json()["status"] == "cancelling"
    order = await oms.wait_for_order(order_id, "cancelled", timeout=20)
    assert order["status_reason"] == "customer_request"
    assert (await oms.product(product["sku"]))["reserved"] == 0
    await assert_nothing_held(oms, db, order_id)


async def test_a_late_authorization_after_cancelling_is_voided_and_does_not_revive_the_order(
    oms: OmsClient, db: asyncpg.Connection, stack: Stack
) -> None:
    product = await oms.create_product(on_hand=5)
    # The gateway answers after 2 s and the payment service waits up to 30 s for it;
    # the cancellation, sent once the payment is at the gateway, is in long before
    # the answer. (Sent earlier, with two payment processes its void can overtake the
    # authorization: the payment is then voided before any hold, another case.)
    async with (
        stack.restarted_with("payment", {"OMS_GATEWAY_TIMEOUT_SECONDS": "30"}),
        gateway_faults(oms, latency_ms=2000),
    ):
        order_id = await order_of(oms, [(product["sku"], 1)])
        await oms.wait_for_order(order_id, "awaiting_payment")
        await oms.wait_for_payment(order_id, "pending")
        cancel = await oms.cancel(order_id)
        assert cancel.status_code == 202
        order = await oms.wait_for_order(order_id, "cancelled", timeout=30)
    assert order["status_reason"] == "customer_request"
    payment = await oms.wait_for_payment(order_id, "voided")
    assert payment["authorized_amount"] == 1000
    history = await oms.history(order_id)
    # The authorization did arrive after the cancellation, and only asked for a void.
    late = [e for e in history if e["detail"].get("received") == "payment.authorized"]
    assert [e["step"] for e in late] == ["compensation_requested"]
    assert "order_paid" not in [e["step"] for e in history]
    assert (await oms.order(order_id))["status"] == "cancelled"
    assert (await oms.product(product["sku"]))["reserved"] == 0
    await assert_nothing_held(oms, db, order_id)


async def test_cancelling_a_paid_order_whose_shipment_is_not_yet_created_never_ships_it(
    oms: OmsClient, db: asyncpg.Connection, stack: Stack
) -> None:
    product = await oms.create_product(on_hand=5)
    async with stack.stopped("shipping"):
        order_id = await order_of(oms, [(product["sku"], 1)])
        await oms.wait_for_order(order_id, "paid")
        cancel = await oms.cancel(order_id)
        assert cancel.status_code == 202
    # Shipping comes back and finds both the creation and the cancellation queued.
    order = await oms.wait_for_order(order_id, "cancelled", timeout=20)
    assert order["status_reason"] == "customer_request"
    shipment = await oms.shipment_of(order_id)
    assert shipment is not None and shipment["status"] == "cancelled"
    assert shipment["tracking_number"] is None
    await assert_nothing_held(oms, db, order_id)


async def test_cancelling_while_waiting_for_the_warehouse_stops_the_shipment_voids_and_releases(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=5)
    order_id, _ = await fulfilling_order(oms, [(product["sku"], 2)])
    cancel = await oms.cancel(order_id)
    assert cancel.status_code == 202
    order = await oms.wait_for_order(order_id, "cancelled")
    assert order["status_reason"] == "customer_request"
    shipment = await oms.shipment_of(order_id)
    assert shipment is not None and shipment["status"] == "cancelled"
    dispatch = await oms.dispatch(shipment["id"])
    assert dispatch.status_code == 409
    payment = await oms.payment_of(order_id)
    assert payment is not None and payment["status"] == "voided"
    assert (await oms.product(product["sku"]))["available"] == 5
    history = await steps(oms, order_id)
    assert history.index("shipment_cancelled") < history.index("payment_voided")
    await assert_nothing_held(oms, db, order_id)


async def test_a_shipped_order_cannot_be_cancelled(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=5)
    order_id, _ = await fulfilling_order(oms, [(product["sku"], 1)])
    await dispatch_and_wait_for_capture(oms, order_id)
    await oms.wait_for_order(order_id, "shipped")
    cancel = await oms.cancel(order_id)
    assert cancel.status_code == 409
    assert cancel.headers["content-type"] == "application/problem+json"
    assert cancel.json()["type"] == "/problems/order-not-cancellable"
    assert (await oms.order(order_id))["status"] == "shipped"


# -- shipments that fail --------------------------------------------------------


async def test_a_shipment_the_warehouse_cannot_make_voids_the_payment_and_releases_the_stock(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=5)
    order_id, shipment = await fulfilling_order(oms, [(product["sku"], 2)])
    failed = await oms.http.post(
        f"{oms.urls['shipping']}/shipments/{shipment['id']}/fail",
        json={"reason": "damaged_in_warehouse"},
        headers=oms.admin(),
    )
    assert failed.status_code == 200
    order = await oms.wait_for_order(order_id, "cancelled")
    assert order["status_reason"] == "damaged_in_warehouse"
    assert (await oms.product(product["sku"]))["available"] == 5
    payment = await oms.payment_of(order_id)
    assert payment is not None and payment["status"] == "voided"
    await assert_nothing_held(oms, db, order_id)


async def test_a_destination_the_carrier_does_not_serve_cancels_the_order(
    oms: OmsClient, db: asyncpg.Connection, stack: Stack
) -> None:
    product = await oms.create_product(on_hand=5)
    async with stack.restarted_with("shipping", {"OMS_SHIPPING_COUNTRIES": "FR,IT"}):
        order_id = await order_of(oms, [(product["sku"], 1)])  # the address is in DE
        order = await oms.wait_for_order(order_id, "cancelled")
    assert order["status_reason"] == "destination_not_served"
    await assert_nothing_held(oms, db, order_id)
    assert (await oms.product(product["sku"]))["available"] == 5


async def test_a_parcel_lost_after_dispatch_is_refunded(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=5, unit_price=700)
    order_id, shipment = await fulfilling_order(oms, [(product["sku"], 2)])
    await dispatch_and_wait_for_capture(oms, order_id)
    failed = await oms.http.post(
        f"{oms.urls['shipping']}/shipments/{shipment['id']}/fail",
        json={"reason": "lost_in_transit"},
        headers=oms.admin(),
    )
    assert failed.status_code == 200
    order = await oms.wait_for_order(order_id, "cancelled")
    assert order["status_reason"] == "lost_in_transit"
    payment = await oms.payment_of(order_id)
    assert payment is not None
    assert (payment["status"], payment["refunded_amount"]) == ("refunded", 1400)
    # The goods left the warehouse: they are not put back on the shelf.
    assert (await oms.product(product["sku"]))["on_hand"] == 3


# -- deadlines --------------------------------------------------------------------


# Waits out deadlines and retry budgets (10-30 s) that no replica shortens: once.
@pytest.mark.single_pass
async def test_a_service_that_never_answers_leads_to_compensation_and_an_operator_flag(
    oms: OmsClient, db: asyncpg.Connection, stack: Stack
) -> None:
    product = await oms.create_product(on_hand=5)
    async with stack.stopped("inventory"):
        order_id = await order_of(oms, [(product["sku"], 2)])
        cancelling = await oms.wait_for_order(order_id, "cancelling", timeout=15)
        assert cancelling["status_reason"] == "reservation_timeout"
        # Nobody confirms the release either: after its retries the order is parked.
        flagged = await oms.wait_for_order(order_id, "requires_attention", timeout=20)
        assert flagged["status_reason"] == "compensation_timeout"
        listed = (
            await oms.http.get(
                f"{oms.urls['order']}/admin/orders",
                params={"state": "requires_attention", "limit": 200},
                headers=oms.admin(),
            )
        ).json()
        assert order_id in [item["id"] for item in listed["items"]]
    # Inventory comes back, handles the queued requests, and confirms the release.
    order = await oms.wait_for_order(order_id, "cancelled", timeout=20)
    assert order["status_reason"] == "reservation_timeout"
    assert (await oms.product(product["sku"]))["reserved"] == 0
    assert "order_requires_attention" in await steps(oms, order_id)
    await assert_nothing_held(oms, db, order_id)


async def test_an_overdue_saga_is_found_by_the_order_service_after_it_restarts(
    oms: OmsClient, db: asyncpg.Connection, stack: Stack
) -> None:
    product = await oms.create_product(on_hand=5)
    async with stack.stopped("inventory"):
        order_id = await order_of(oms, [(product["sku"], 1)])
        for replica in stack.replica_names("order"):
            stack.kill(replica)  # no shutdown code runs
        await db.execute(  # the deadline passes while nobody runs the sweeper
            "UPDATE orders.orders SET deadline_at = now() - interval '1 second' "
            "WHERE id = $1::uuid",
            order_id,
        )
        await stack.start_service("order")
        order = await oms.wait_for_order(order_id, "cancelling", "requires_attention", timeout=10)
        assert order["status_reason"] in ("reservation_timeout", "compensation_timeout")
    order = await oms.wait_for_order(order_id, "cancelled", timeout=20)
    await assert_nothing_held(oms, db, order_id)


# -- compensations that fail ------------------------------------------------------


async def test_a_refused_void_parks_the_order_for_an_operator_who_can_force_it(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=5)
    order_id, _ = await fulfilling_order(oms, [(product["sku"], 1)], "tok_void_refused")
    assert (await oms.cancel(order_id)).status_code == 202
    order = await oms.wait_for_order(order_id, "requires_attention", timeout=20)
    assert order["status_reason"].startswith("void_failed")
    assert (await oms.product(product["sku"]))["reserved"] == 0  # the release went through

    retried = await oms.http.post(
        f"{oms.urls['order']}/admin/orders/{order_id}/retry", headers=oms.admin()
    )
    assert retried.status_code == 200
    assert retried.json()["status"] == "cancelling"
    # The gateway still refuses: parked again.
    await oms.wait_for_order(order_id, "requires_attention", timeout=20)

    customer = await oms.http.post(
        f"{oms.urls['order']}/admin/orders/{order_id}/force", headers=oms.as_customer()
    )
    assert customer.status_code == 403
    forced = await oms.http.post(
        f"{oms.urls['order']}/admin/orders/{order_id}/force", headers=oms.admin()
    )
    assert forced.status_code == 200
    assert (forced.json()["status"], forced.json()["status_reason"]) == (
        "cancelled",
        "customer_request",
    )
    history = await oms.history(order_id)
    forced_entry = next(e for e in history if e["step"] == "compensation_forced")
    assert forced_entry["detail"]["operator"] == "ops"
    assert forced_entry["detail"]["skipped"] == ["void_payment"]
    again = await oms.http.post(
        f"{oms.urls['order']}/admin/orders/{order_id}/force", headers=oms.admin()
    )
    assert again.status_code == 409


async def test_a_refused_capture_parks_the_shipped_order(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=5)
    order_id, shipment = await fulfilling_order(oms, [(product["sku"], 1)], "tok_capture_refused")
    assert (await oms.dispatch(shipment["id"])).status_code == 200
    order = await oms.wait_for_order(order_id, "requires_attention", timeout=20)
    assert order["status_reason"].startswith("capture_failed")
    assert order["tracking_number"] == (await oms.shipment_of(order_id) or {})["tracking_number"]


# Waits out deadlines and retry budgets (10-30 s) that no replica shortens: once.
@pytest.mark.single_pass
async def test_an_operator_retry_once_the_gateway_is_back_settles_the_parked_order(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=5)
    order_id, shipment = await fulfilling_order(oms, [(product["sku"], 1)])
    async with gateway_faults(oms, failure_rate=1.0):
        assert (await oms.dispatch(shipment["id"])).status_code == 200
        # The gateway answers nothing but "unavailable": the payment service gives
        # each capture up after its retries, the saga asks again at its settlement
        # deadline, and once those attempts are spent the order waits for a person.
        parked = await oms.wait_for_order(order_id, "requires_attention", timeout=90)
        assert parked["status_reason"] == "settlement_timeout"
        unanswered = [e for e in await oms.history(order_id) if e["step"] == "step_unanswered"]
        assert unanswered and unanswered[0]["detail"]["step"] == "capture_payment"
        # No attempt of the payment service's own is left to succeed once the gateway
        # is back, so only the operator's retry can settle the order.
        await eventually(
            lambda: pending_gateway_operations(db, order_id),
            lambda pending: pending == 0,
            10,
            "the payment service to give up the capture",
        )
    assert (await oms.order(order_id))["status"] == "requires_attention"

    retried = await oms.http.post(
        f"{oms.urls['order']}/admin/orders/{order_id}/retry", headers=oms.admin()
    )
    assert retried.status_code == 200
    assert retried.json()["status"] == "shipped"
    payment = await oms.wait_for_payment(order_id, "captured")
    assert payment["captured_amount"] == 1000
    delivered = await oms.tracking_event(shipment["id"], "delivered", datetime.now(UTC).isoformat())
    assert delivered.status_code == 202
    await oms.wait_for_order(order_id, "completed")
    retry = next(e for e in await oms.history(order_id) if e["step"] == "operator_retried")
    assert retry["detail"]["operator"] == "ops"
    holds = await oms.gateway_holds(payment["id"])
    assert [(h["status"], h["captured_amount"]) for h in holds] == [("captured", 1000)]


async def pending_gateway_operations(db: asyncpg.Connection, order_id: str) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM payment.payment_operations o JOIN payment.payments p "
            "ON p.id = o.payment_id WHERE p.order_id = $1 AND o.status = 'pending'",
            order_id,
        )
    )


# -- history ------------------------------------------------------------------------


async def test_the_history_tells_support_why_an_order_ended_as_it_did(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=5)
    order_id = await order_of(oms, [(product["sku"], 1)], token="tok_declined")
    await oms.wait_for_order(order_id, "cancelled")
    history = await oms.history(order_id)
    assert [e["step"] for e in history] == [
        "order_placed",
        "order_awaiting_payment",
        "compensation_requested",
        "stock_released",
        "order_cancelled",
    ]
    compensation = history[2]
    assert compensation["detail"]["received"] == "payment.authorization_failed"
    assert compensation["detail"]["sent"] == ["inventory.release_stock"]
    assert compensation["detail"]["reason"] == "payment_declined"
    assert history[0]["detail"]["sent"] == ["order.created", "inventory.reserve_stock"]
    times = [e["occurred_at"] for e in history]
    assert times == sorted(times)
