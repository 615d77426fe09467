"""The payment service and the gateway simulator, driven over AMQP as the order saga
drives them (without the order service: the orders here are unknown to it, and it
ignores their replies): one authorization, a partial capture per parcel under the
parcel's idempotency key, the last capture final, and a partial cancellation that
keeps the parcel that left and releases the rest of the hold."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from oms_contracts import payment as msgs
from oms_devtools.client import OmsClient, eventually

from .helpers import EventRecorder
from .payment_saga import Saga

# Payment alone, driven over AMQP: nothing here depends on replicas.
pytestmark = [pytest.mark.e2e, pytest.mark.single_pass]


@pytest.fixture
async def saga(
    test_amqp_url: str, event_recorder: EventRecorder, oms: OmsClient
) -> AsyncIterator[Saga]:
    async with Saga.connected(test_amqp_url, event_recorder, oms) as driving:
        yield driving


async def the_gateways_hold(oms: OmsClient, payment_id: str) -> dict[str, Any]:
    [hold] = await oms.gateway_holds(payment_id)
    return hold


async def capture_calls(oms: OmsClient, payment_id: str) -> list[dict[str, Any]]:
    return await oms.gateway_calls(payment_id, "capture")


async def test_each_parcel_is_captured_under_its_own_key_and_the_last_settles(
    saga: Saga, oms: OmsClient
) -> None:
    payment_id = (await saga.authorized(1000))["payment_id"]

    first = await saga.captured(300, "berlin")
    assert (first["amount"], first["captured_total"]) == (300, 300)
    payment = await saga.payment()
    assert (payment["status"], payment["captured_amount"]) == ("partially_captured", 300)
    hold = await the_gateways_hold(oms, payment_id)
    assert (hold["status"], hold["captured_amount"]) == ("partially_captured", 300)

    second = await saga.captured(700, "lyon")
    assert (second["amount"], second["captured_total"]) == (700, 1000)
    payment = await saga.payment()
    assert (payment["status"], payment["captured_amount"]) == ("captured", 1000)
    assert [
        (c["fulfillment_id"], c["amount"], c["status"], c["final"]) for c in payment["captures"]
    ] == [
        (saga.parcel("berlin"), 300, "succeeded", False),
        (saga.parcel("lyon"), 700, "succeeded", True),
    ]
    hold = await the_gateways_hold(oms, payment_id)
    assert (hold["status"], hold["amount"], hold["captured_amount"]) == ("captured", 1000, 1000)

    # What payment sent the gateway, per parcel: its key, its amount, final or not.
    calls = await capture_calls(oms, payment_id)
    assert [(c["idempotency_key"], c["request"], c["status_code"]) for c in calls] == [
        (
            f"{payment_id}:capture:{saga.parcel('berlin')}",
            {"path": f"/v1/authorizations/{hold['id']}/capture", "amount": 300, "final": False},
            200,
        ),
        (
            f"{payment_id}:capture:{saga.parcel('lyon')}",
            {"path": f"/v1/authorizations/{hold['id']}/capture", "amount": 700},
            200,
        ),
    ]
    # ... and the gateway knows those keys: the same request again is its first answer.
    async with httpx.AsyncClient(base_url=oms.urls["gateway"]) as gateway:
        replayed = await gateway.post(
            f"/v1/authorizations/{hold['id']}/capture",
            json={"amount": 300, "final": False},
            headers={"Idempotency-Key": f"{payment_id}:capture:{saga.parcel('berlin')}"},
        )
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert replayed.json()["captured_amount"] == 300  # as answered then


async def test_a_redelivered_capture_command_captures_once_and_repeats_its_answer(
    saga: Saga, oms: OmsClient
) -> None:
    payment_id = (await saga.authorized(1000))["payment_id"]
    await saga.captured(400, "berlin")

    await saga.capture(400, "berlin")  # the order service sends it again (new message id)

    again = await saga.answer("payment.captured", count=2, fulfillment_id=saga.parcel("berlin"))
    assert [(e["amount"], e["captured_total"]) for e in again] == [(400, 400), (400, 400)]
    assert len(await capture_calls(oms, payment_id)) == 1
    hold = await the_gateways_hold(oms, payment_id)
    assert (hold["status"], hold["captured_amount"]) == ("partially_captured", 400)


async def test_a_capture_above_what_is_left_is_refused_naming_the_parcel(
    saga: Saga, oms: OmsClient
) -> None:
    payment_id = (await saga.authorized(1000))["payment_id"]
    await saga.captured(800, "berlin")

    await saga.capture(300, "lyon")

    [refused] = await saga.answer("payment.capture_failed", fulfillment_id=saga.parcel("lyon"))
    assert refused["error"].startswith("capture_exceeds_remaining: 300 asked, 200 may still be")
    assert len(await capture_calls(oms, payment_id)) == 1
    assert (await saga.payment())["captured_amount"] == 800


async def test_a_partial_cancellation_after_the_kept_capture_releases_the_rest_of_the_hold(
    saga: Saga, oms: OmsClient
) -> None:
    payment_id = (await saga.authorized(1000))["payment_id"]
    await saga.captured(400, "berlin")

    await saga.send(
        msgs.VoidPayment(order_id=saga.order_id, reason="customer_request", keep_amount=400)
    )

    await saga.answer("payment.voided")
    payment = await saga.payment()
    assert (payment["status"], payment["captured_amount"], payment["keep_amount"]) == (
        "captured",
        400,
        400,
    )
    hold = await the_gateways_hold(oms, payment_id)
    # The other 600 went back to the card: nothing is held any more.
    assert (hold["status"], hold["captured_amount"]) == ("captured", 400)
    after = await oms.http.post(
        f"{oms.urls['gateway']}/v1/authorizations/{hold['id']}/capture",
        json={"amount": 1, "final": False},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert after.status_code == 409

    # The cancelled parcel's capture, should it come anyway, is refused.
    await saga.capture(600, "lyon")
    [refused] = await saga.answer("payment.capture_failed", fulfillment_id=saga.parcel("lyon"))
    assert "expected total 400" in refused["error"]


async def test_a_partial_cancellation_before_the_kept_capture_settles_with_that_capture(
    saga: Saga, oms: OmsClient
) -> None:
    payment_id = (await saga.authorized(1000))["payment_id"]
    await saga.send(
        msgs.VoidPayment(order_id=saga.order_id, reason="customer_request", keep_amount=250)
    )
    # Handled before the capture is sent (replicas may take commands in any order).
    await eventually(saga.payment, lambda p: p["keep_amount"] == 250, 20, "the void handled")

    await saga.captured(250, "berlin")

    await saga.answer("payment.voided")
    hold = await the_gateways_hold(oms, payment_id)
    assert (hold["status"], hold["captured_amount"]) == ("captured", 250)
    # The kept parcel's capture was the last: final, so no void was needed after it.
    calls = await oms.gateway_calls(payment_id)
    assert [(c["operation"], c["request"].get("amount")) for c in calls] == [
        ("authorize", 1000),
        ("capture", 250),
    ]
    assert (await saga.payment())["status"] == "captured"
