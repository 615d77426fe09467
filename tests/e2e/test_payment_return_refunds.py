"""Refunds of returns, at the payment service and the gateway simulator, driven over
AMQP as the order saga drives them (`payment.refund_return` after an authorization
and a capture; the orders are unknown to the order service, which ignores the
replies): a return is refunded once however often its command comes, several
returns are refunded in part, never beyond what was captured and not refunded, and a
refund the gateway refuses or never answers is answered `payment.refund_failed`,
after which an operator's next attempt refunds, once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from oms_contracts import payment as msgs
from oms_devtools.client import OmsClient

from .helpers import EventRecorder, gateway_faults
from .payment_saga import Saga

pytestmark = pytest.mark.e2e

# OMS_GATEWAY_MAX_ATTEMPTS, as the test stack runs payment (the default).
GATEWAY_ATTEMPTS = 4


@pytest.fixture
async def saga(
    test_amqp_url: str, event_recorder: EventRecorder, oms: OmsClient
) -> AsyncIterator[Saga]:
    async with Saga.connected(test_amqp_url, event_recorder, oms) as driving:
        yield driving


async def paid(saga: Saga, amount: int, token: str = "tok_ok") -> str:
    """The order's payment, authorized and `amount` captured (one parcel); its id."""
    payment_id: str = (await saga.authorized(amount, token))["payment_id"]
    await saga.captured(amount, "berlin")
    return payment_id


def a_return() -> str:
    return str(uuid.uuid4())


def refund(saga: Saga, return_id: str, amount: int, attempt: int = 0) -> msgs.RefundReturn:
    return msgs.RefundReturn(
        order_id=saga.order_id, return_id=return_id, amount=amount, attempt=attempt
    )


async def the_gateways_hold(oms: OmsClient, payment_id: str) -> dict[str, Any]:
    [hold] = await oms.gateway_holds(payment_id)
    return hold


async def test_a_refund_command_redelivered_and_sent_again_refunds_once(
    saga: Saga, oms: OmsClient
) -> None:
    payment_id = await paid(saga, 1000)
    return_id = a_return()
    first = saga.envelope(refund(saga, return_id, 400))

    await saga.publish(first)
    await saga.publish(first)  # redelivered: the same message again
    [refunded] = await saga.answer("payment.refunded", return_id=return_id)
    await saga.send(refund(saga, return_id, 400))  # re-sent: a new message, same attempt

    again = await saga.answer("payment.refunded", count=2, return_id=return_id)
    assert [(e["refund_id"], e["amount"], e["refunded_total"]) for e in again] == [
        (f"return-{return_id}-0", 400, 400),
        (f"return-{return_id}-0", 400, 400),
    ]
    assert refunded["payment_id"] == payment_id
    calls = await oms.gateway_calls(payment_id, "refund")
    assert [(c["idempotency_key"], c["request"]["amount"], c["status_code"]) for c in calls] == [
        (f"{payment_id}:refund:return-{return_id}-0", 400, 201)
    ]
    payment = await saga.payment()
    assert (payment["status"], payment["refunded_amount"]) == ("partially_refunded", 400)
    hold = await the_gateways_hold(oms, payment_id)
    assert (hold["status"], hold["refunded_amount"]) == ("partially_refunded", 400)


async def test_several_returns_are_refunded_in_part_and_never_beyond_what_is_left(
    saga: Saga, oms: OmsClient
) -> None:
    payment_id = await paid(saga, 1000)
    first, second, third = a_return(), a_return(), a_return()

    await saga.send(refund(saga, first, 300))
    [one] = await saga.answer("payment.refunded", return_id=first)
    await saga.send(refund(saga, second, 500))
    [two] = await saga.answer("payment.refunded", return_id=second)
    await saga.send(refund(saga, third, 300))
    [refused] = await saga.answer("payment.refund_failed", return_id=third)

    assert [(e["amount"], e["refunded_total"]) for e in (one, two)] == [(300, 300), (500, 800)]
    assert refused["payment_id"] == payment_id
    assert refused["error"] == (
        "refund_exceeds_refundable: 300 asked, 200 may still be refunded "
        "(captured 1000, refunded or being refunded 800)"
    )
    refunds = await oms.payment_refunds(payment_id)
    assert [(r["return_id"], r["amount"], r["status"]) for r in refunds] == [
        (first, 300, "succeeded"),
        (second, 500, "succeeded"),
    ]
    assert len(await oms.gateway_calls(payment_id, "refund")) == 2  # the third never went
    payment = await saga.payment()
    assert (payment["status"], payment["refunded_amount"]) == ("partially_refunded", 800)
    hold = await the_gateways_hold(oms, payment_id)
    assert (hold["captured_amount"], hold["refunded_amount"]) == (1000, 800)


async def test_a_return_is_refunded_only_from_the_parcels_captured_so_far(
    saga: Saga, oms: OmsClient
) -> None:
    payment_id = (await saga.authorized(1000))["payment_id"]
    await saga.captured(400, "berlin")  # the other parcel has not left
    return_id = a_return()

    await saga.send(refund(saga, return_id, 500))
    [refused] = await saga.answer("payment.refund_failed", return_id=return_id)
    await saga.send(refund(saga, return_id, 400, attempt=1))
    [refunded] = await saga.answer("payment.refunded", return_id=return_id)

    assert refused["error"].startswith("refund_exceeds_refundable: 500 asked, 400 may still be")
    assert (refunded["amount"], refunded["refund_id"]) == (400, f"return-{return_id}-1")
    hold = await the_gateways_hold(oms, payment_id)
    assert (hold["captured_amount"], hold["refunded_amount"]) == (400, 400)


async def test_a_refund_the_gateway_refuses_fails_and_once_fixed_the_next_attempt_refunds(
    saga: Saga, oms: OmsClient
) -> None:
    payment_id = await paid(saga, 1000, token="tok_refund_refused")
    return_id = a_return()

    await saga.send(refund(saga, return_id, 400))
    [refused] = await saga.answer("payment.refund_failed", return_id=return_id)
    assert (refused["payment_id"], refused["error"]) == (payment_id, "refund_refused")
    await saga.send(refund(saga, return_id, 400))  # the same attempt again: the same answer
    await saga.answer("payment.refund_failed", count=2, return_id=return_id)
    assert (await saga.payment())["refunded_amount"] == 0

    async with gateway_faults(oms, refund_refused_token_active=False):  # fixed at the gateway
        await saga.send(refund(saga, return_id, 400, attempt=1))  # an operator's retry
        [refunded] = await saga.answer("payment.refunded", return_id=return_id)

    assert (refunded["refund_id"], refunded["amount"]) == (f"return-{return_id}-1", 400)
    calls = await oms.gateway_calls(payment_id, "refund")
    assert [(c["idempotency_key"], c["status_code"], c["response"]) for c in calls] == [
        (f"{payment_id}:refund:return-{return_id}-0", 402, {"error": "refund_refused"}),
        (f"{payment_id}:refund:return-{return_id}-1", 201, calls[1]["response"]),
    ]
    refunds = await oms.payment_refunds(payment_id)
    assert [(r["id"], r["status"], r["error"]) for r in refunds] == [
        (f"return-{return_id}-0", "failed", "refund_refused"),
        (f"return-{return_id}-1", "succeeded", None),
    ]
    hold = await the_gateways_hold(oms, payment_id)
    assert (hold["status"], hold["refunded_amount"]) == ("partially_refunded", 400)


async def test_a_refund_the_gateway_never_answers_fails_after_bounded_tries_and_retries_its_key(
    saga: Saga, oms: OmsClient
) -> None:
    payment_id = await paid(saga, 1000)
    return_id = a_return()
    key = f"{payment_id}:refund:return-{return_id}-0"

    async with gateway_faults(oms, failure_rate=1.0):
        await saga.send(refund(saga, return_id, 400))
        [failed] = await saga.answer("payment.refund_failed", return_id=return_id)
    assert failed["error"] == "gateway_unavailable: HTTP 503 unavailable"
    unanswered = await oms.gateway_calls(payment_id, "refund")
    assert [(c["idempotency_key"], c["status_code"]) for c in unanswered] == [
        (key, 503)
    ] * GATEWAY_ATTEMPTS
    [given_up] = await oms.payment_refunds(payment_id)
    assert (given_up["status"], given_up["error"]) == ("failed", failed["error"])

    # The gateway may have refunded unheard: the next attempt asks under the same key.
    await saga.send(refund(saga, return_id, 400, attempt=1))
    [refunded] = await saga.answer("payment.refunded", return_id=return_id)

    assert (refunded["refund_id"], refunded["refunded_total"]) == (f"return-{return_id}-0", 400)
    calls = await oms.gateway_calls(payment_id, "refund")
    assert [(c["idempotency_key"], c["status_code"]) for c in calls[GATEWAY_ATTEMPTS:]] == [
        (key, 201)
    ]
    hold = await the_gateways_hold(oms, payment_id)
    assert hold["refunded_amount"] == 400
