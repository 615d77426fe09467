"""The payment service's handlers on an in-memory unit of work: each command loads the
payment, asks it for one thing and commits; the gateway's answers come back through
`Payment.apply_gateway_answer` as the gateway worker applies them."""

from __future__ import annotations

from oms_contracts import order as order_msgs
from oms_contracts import payment as msgs
from oms_payment.domain.model import (
    Approved,
    Declined,
    OperationKind,
    PaymentStatus,
)
from oms_payment.handlers import messages

from .fakes import FakePaymentUnitOfWork, the_gateway_answers
from .payments import authorized


def capture(amount: int | None, fulfillment_id: str | None) -> msgs.CapturePayment:
    return msgs.CapturePayment(order_id="o-1", amount=amount, fulfillment_id=fulfillment_id)


async def test_each_parcel_is_captured_for_its_amount_and_the_last_capture_settles() -> None:
    uow = FakePaymentUnitOfWork(authorized(1000))

    await messages.capture_payment(capture(300, "parcel-1"), uow)
    first = await the_gateway_answers(uow, Approved("auth-1", 300))
    await messages.capture_payment(capture(700, "parcel-2"), uow)
    second = await the_gateway_answers(uow, Approved("auth-1", 700))

    assert [(op.idempotency_key, op.amount, op.final) for op in (first, second)] == [
        ("pay-1:capture:parcel-1", 300, False),
        ("pay-1:capture:parcel-2", 700, True),
    ]
    assert uow.sent == [
        msgs.PaymentCaptured(
            order_id="o-1",
            payment_id="pay-1",
            amount=300,
            currency="EUR",
            fulfillment_id="parcel-1",
            captured_total=300,
        ),
        msgs.PaymentCaptured(
            order_id="o-1",
            payment_id="pay-1",
            amount=700,
            currency="EUR",
            fulfillment_id="parcel-2",
            captured_total=1000,
        ),
    ]
    assert uow.payments.by_id["pay-1"].status is PaymentStatus.CAPTURED
    assert uow.payments.booked == [("pay-1", "parcel-1", 300), ("pay-1", "parcel-2", 700)]


async def test_a_redelivered_capture_command_captures_once_and_repeats_the_answer() -> None:
    uow = FakePaymentUnitOfWork(authorized(1000))

    await messages.capture_payment(capture(300, "parcel-1"), uow)
    await messages.capture_payment(capture(300, "parcel-1"), uow)
    assert len(uow.queued) == 1
    await the_gateway_answers(uow, Approved("auth-1", 300))
    await messages.capture_payment(capture(300, "parcel-1"), uow)

    assert uow.sent_types() == ["payment.captured", "payment.captured"]
    assert uow.queued == []
    # Into the books once: the repeat moved no money.
    assert uow.payments.booked == [("pay-1", "parcel-1", 300)]
    assert uow.payments.by_id["pay-1"].captured_amount == 300


async def test_a_capture_above_what_is_left_is_answered_capture_failed_for_the_parcel() -> None:
    uow = FakePaymentUnitOfWork(authorized(1000))
    await messages.capture_payment(capture(800, "parcel-1"), uow)
    await the_gateway_answers(uow, Approved("auth-1", 800))

    await messages.capture_payment(capture(300, "parcel-2"), uow)

    refused = uow.sent[-1]
    assert isinstance(refused, msgs.PaymentCaptureFailed)
    assert refused.fulfillment_id == "parcel-2"
    assert refused.error.startswith("capture_exceeds_remaining: 300 asked, 200 may still be")
    assert uow.queued == []


async def test_a_capture_the_gateway_refuses_is_answered_capture_failed_for_the_parcel() -> None:
    uow = FakePaymentUnitOfWork(authorized(1000))
    await messages.capture_payment(capture(300, "parcel-1"), uow)

    await the_gateway_answers(uow, Declined("capture_refused"))

    assert uow.sent == [
        msgs.PaymentCaptureFailed(
            order_id="o-1", payment_id="pay-1", error="capture_refused", fulfillment_id="parcel-1"
        )
    ]


async def test_a_partial_cancellation_is_answered_voided_once_the_kept_parcel_is_captured() -> None:
    uow = FakePaymentUnitOfWork(authorized(1000))

    await messages.void_payment(
        msgs.VoidPayment(order_id="o-1", reason="customer_request", keep_amount=300), uow
    )
    assert uow.sent == []
    await messages.capture_payment(capture(300, "parcel-1"), uow)
    kept = await the_gateway_answers(uow, Approved("auth-1", 300))

    assert kept.final is True  # the gateway releases the other 700 with it
    assert uow.sent_types() == ["payment.captured", "payment.voided"]
    payment = uow.payments.by_id["pay-1"]
    assert (payment.status, payment.captured_amount, payment.keep_amount) == (
        PaymentStatus.CAPTURED,
        300,
        300,
    )


async def test_a_partial_cancellation_after_the_kept_capture_releases_the_rest() -> None:
    uow = FakePaymentUnitOfWork(authorized(1000))
    await messages.capture_payment(capture(300, "parcel-1"), uow)
    await the_gateway_answers(uow, Approved("auth-1", 300))

    await messages.void_payment(
        msgs.VoidPayment(order_id="o-1", reason="customer_request", keep_amount=300), uow
    )
    release = await the_gateway_answers(uow, Approved("auth-1", 0))

    assert (release.kind, release.amount, release.idempotency_key) == (
        OperationKind.VOID,
        700,
        "pay-1:void",
    )
    assert uow.sent_types() == ["payment.captured", "payment.voided"]


async def test_an_old_style_capture_without_parcel_captures_everything_held() -> None:
    uow = FakePaymentUnitOfWork(authorized(1000))

    await messages.capture_payment(msgs.CapturePayment(order_id="o-1"), uow)
    operation = await the_gateway_answers(uow, Approved("auth-1", 1000))

    assert (operation.idempotency_key, operation.amount, operation.final) == (
        "pay-1:capture",
        1000,
        True,
    )
    [captured] = uow.sent
    assert isinstance(captured, msgs.PaymentCaptured)
    assert (captured.amount, captured.fulfillment_id, captured.captured_total) == (1000, None, 1000)


async def test_an_authorization_request_starts_a_payment_with_one_authorization() -> None:
    uow = FakePaymentUnitOfWork()

    command = msgs.AuthorizePayment(
        order_id="o-1", amount=1000, currency="EUR", payment_token="tok_ok"
    )
    await messages.authorize_payment(command, uow)
    await messages.authorize_payment(command, uow)  # asked again before the answer

    [payment] = uow.payments.by_id.values()
    assert [(op.kind, op.amount) for op in uow.queued] == [(OperationKind.AUTHORIZE, 1000)]
    await the_gateway_answers(uow, Approved("auth-1", 1000))
    assert payment.status is PaymentStatus.AUTHORIZED
    assert uow.sent_types() == ["payment.authorized"]


async def test_a_void_for_an_order_without_payment_is_remembered_and_answered() -> None:
    uow = FakePaymentUnitOfWork()

    await messages.void_payment(msgs.VoidPayment(order_id="o-9", reason="customer_request"), uow)

    [payment] = uow.payments.by_id.values()
    assert payment.status is PaymentStatus.VOIDED
    assert uow.sent_types() == ["payment.voided"]


async def test_a_capture_for_an_order_without_payment_changes_nothing() -> None:
    uow = FakePaymentUnitOfWork()

    await messages.capture_payment(capture(300, "parcel-1"), uow)

    assert (uow.sent, uow.queued, uow.payments.by_id) == ([], [], {})


async def test_a_deleted_order_erases_the_card_token_from_the_payment_and_its_audit_log() -> None:
    uow = FakePaymentUnitOfWork(authorized())

    await messages.order_deleted(order_msgs.OrderDeleted(order_id="o-1"), uow)

    assert uow.payments.by_id["pay-1"].token == ""
    assert uow.operations.erased_for == ["pay-1"]
