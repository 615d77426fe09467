"""One authorization, a capture per parcel: the captures add up to what the order
expects, the one that completes it is final and settles the payment, and a partial
cancellation keeps what shipped and releases the rest of the hold."""

from __future__ import annotations

import pytest

from oms_payment.domain.model import (
    Approved,
    Captured,
    CaptureFailed,
    CaptureStatus,
    CompensationFailed,
    Declined,
    Operation,
    OperationKind,
    Payment,
    PaymentStatus,
    Refunded,
    RefundError,
    Voided,
)

from .payments import authorized, take_operations


def take_events(payment: Payment) -> list[object]:
    taken = list(payment.events)
    payment.events.clear()
    return taken


def captured_parcel(payment: Payment, fulfillment_id: str, amount: int) -> None:
    """The parcel's capture asked for and confirmed by the gateway."""
    payment.request_capture(amount, fulfillment_id)
    [operation] = take_operations(payment)
    payment.apply_gateway_answer(operation, Approved("auth-1", amount))


# -- captures per parcel -----------------------------------------------------------------


def test_two_partial_captures_settle_the_payment_with_the_second_one_final() -> None:
    payment = authorized(1000)

    payment.request_capture(300, "parcel-1")
    [first] = take_operations(payment)
    assert first == Operation("pay-1", OperationKind.CAPTURE, 300, "parcel-1", final=False)
    assert first.idempotency_key == "pay-1:capture:parcel-1"
    payment.apply_gateway_answer(first, Approved("auth-1", 300))
    assert payment.status is PaymentStatus.PARTIALLY_CAPTURED
    assert take_events(payment) == [Captured("pay-1", "o-1", 300, "EUR", "parcel-1", 300)]

    payment.request_capture(700, "parcel-2")
    [second] = take_operations(payment)
    assert second == Operation("pay-1", OperationKind.CAPTURE, 700, "parcel-2", final=True)
    assert second.idempotency_key == "pay-1:capture:parcel-2"
    payment.apply_gateway_answer(second, Approved("auth-1", 700))

    assert (payment.status, payment.captured_amount) == (PaymentStatus.CAPTURED, 1000)
    assert take_events(payment) == [Captured("pay-1", "o-1", 700, "EUR", "parcel-2", 1000)]


def test_a_capture_asked_for_while_another_is_at_the_gateway_waits_and_goes_final() -> None:
    payment = authorized(1000)
    payment.request_capture(300, "parcel-1")
    [first] = take_operations(payment)

    payment.request_capture(700, "parcel-2")
    # Not sent yet: sent now as final, it could release a hold parcel-1 still needs.
    assert take_operations(payment) == []
    assert payment.captures[1].status is CaptureStatus.WAITING

    payment.apply_gateway_answer(first, Approved("auth-1", 300))
    [second] = take_operations(payment)
    assert (second.reference, second.amount, second.final) == ("parcel-2", 700, True)


def test_a_failed_capture_is_announced_and_asked_again_becomes_the_last_one() -> None:
    payment = authorized(1000)
    payment.request_capture(300, "parcel-1")
    payment.request_capture(700, "parcel-2")
    [first] = take_operations(payment)

    payment.apply_gateway_answer(first, Declined("capture_refused"))
    assert take_events(payment) == [CaptureFailed("pay-1", "o-1", "capture_refused", "parcel-1")]
    # The waiting one goes now; parcel-1 may still come, so it is not the last.
    [second] = take_operations(payment)
    assert (second.reference, second.final) == ("parcel-2", False)
    payment.apply_gateway_answer(second, Approved("auth-1", 700))

    payment.request_capture(300, "parcel-1")
    [retried] = take_operations(payment)
    assert retried == Operation("pay-1", OperationKind.CAPTURE, 300, "parcel-1", final=True)
    assert retried.idempotency_key == first.idempotency_key
    payment.apply_gateway_answer(retried, Approved("auth-1", 300))
    assert (payment.status, payment.captured_amount) == (PaymentStatus.CAPTURED, 1000)


def test_a_capture_above_what_may_still_be_captured_is_refused_with_the_reason() -> None:
    payment = authorized(1000)
    captured_parcel(payment, "parcel-1", 600)
    take_events(payment)

    payment.request_capture(500, "parcel-2")

    assert take_operations(payment) == []
    [refused] = take_events(payment)
    assert isinstance(refused, CaptureFailed)
    assert refused.fulfillment_id == "parcel-2"
    assert refused.error.startswith("capture_exceeds_remaining: 500 asked, 400 may still be")
    assert (payment.status, payment.captured_amount) == (PaymentStatus.PARTIALLY_CAPTURED, 600)


def test_captures_waiting_for_their_turn_count_against_what_may_still_be_captured() -> None:
    payment = authorized(1000)
    payment.request_capture(600, "parcel-1")
    payment.request_capture(300, "parcel-2")

    payment.request_capture(200, "parcel-3")

    assert [e.fulfillment_id for e in take_events(payment) if isinstance(e, CaptureFailed)] == [
        "parcel-3"
    ]


def test_a_capture_without_amount_is_the_old_single_capture_of_everything_held() -> None:
    payment = authorized(1000)

    payment.request_capture()

    [operation] = take_operations(payment)
    assert operation == Operation("pay-1", OperationKind.CAPTURE, 1000, None, final=True)
    assert operation.idempotency_key == "pay-1:capture"
    payment.apply_gateway_answer(operation, Approved("auth-1", 1000))
    assert payment.status is PaymentStatus.CAPTURED
    assert take_events(payment) == [Captured("pay-1", "o-1", 1000, "EUR", None, 1000)]


def test_a_parcels_capture_without_amount_takes_what_is_left() -> None:
    payment = authorized(1000)
    captured_parcel(payment, "parcel-1", 250)

    payment.request_capture(None, "parcel-2")

    [operation] = take_operations(payment)
    assert (operation.amount, operation.final) == (750, True)


def test_a_redelivered_capture_command_captures_once_and_repeats_the_outcome() -> None:
    payment = authorized(1000)
    payment.request_capture(300, "parcel-1")
    payment.request_capture(300, "parcel-1")  # while the first is at the gateway
    [operation] = take_operations(payment)
    payment.apply_gateway_answer(operation, Approved("auth-1", 300))
    take_events(payment)

    payment.request_capture(300, "parcel-1")  # after it landed

    assert take_operations(payment) == []
    assert take_events(payment) == [
        Captured("pay-1", "o-1", 300, "EUR", "parcel-1", 300, repeated=True)
    ]
    assert payment.captured_amount == 300


def test_a_confirmation_reported_twice_counts_the_money_once() -> None:
    payment = authorized(1000)
    payment.request_capture(300, "parcel-1")
    [operation] = take_operations(payment)

    payment.apply_gateway_answer(operation, Approved("auth-1", 300))
    payment.apply_gateway_answer(operation, Approved("auth-1", 300))

    assert payment.captured_amount == 300
    assert len([e for e in take_events(payment) if isinstance(e, Captured)]) == 1


def test_a_parcel_captured_after_the_payment_settled_is_refused() -> None:
    payment = authorized(1000)
    captured_parcel(payment, "parcel-1", 1000)
    take_events(payment)

    payment.request_capture(100, "parcel-2")

    [refused] = take_events(payment)
    assert isinstance(refused, CaptureFailed)
    assert "settled" in refused.error
    assert take_operations(payment) == []


# -- a partial cancellation: keep what shipped, release the rest ---------------------------


def test_a_void_keeping_a_parcel_before_its_capture_waits_then_the_capture_settles() -> None:
    payment = authorized(1000)

    payment.request_void(keep_amount=300)
    assert take_operations(payment) == []
    assert take_events(payment) == []

    payment.request_capture(300, "parcel-1")
    [operation] = take_operations(payment)
    # The last capture of what the order keeps: the gateway releases the other 700.
    assert (operation.amount, operation.final) == (300, True)
    payment.apply_gateway_answer(operation, Approved("auth-1", 300))

    assert (payment.status, payment.captured_amount) == (PaymentStatus.CAPTURED, 300)
    assert take_events(payment) == [
        Captured("pay-1", "o-1", 300, "EUR", "parcel-1", 300),
        Voided("pay-1", "o-1"),
    ]
    assert take_operations(payment) == []


def test_a_void_keeping_parcels_already_captured_releases_the_rest_of_the_hold() -> None:
    payment = authorized(1000)
    captured_parcel(payment, "parcel-1", 300)
    take_events(payment)

    payment.request_void(keep_amount=300)

    [release] = take_operations(payment)
    assert release == Operation("pay-1", OperationKind.VOID, 700)
    assert take_events(payment) == []
    payment.apply_gateway_answer(release, Approved("auth-1", 0))
    assert (payment.status, payment.captured_amount) == (PaymentStatus.CAPTURED, 300)
    assert take_events(payment) == [Voided("pay-1", "o-1")]


def test_a_void_keeping_a_parcel_whose_capture_is_at_the_gateway_releases_after_it() -> None:
    payment = authorized(1000)
    payment.request_capture(300, "parcel-1")
    [capture] = take_operations(payment)

    payment.request_void(keep_amount=300)
    assert take_operations(payment) == []

    payment.apply_gateway_answer(capture, Approved("auth-1", 300))
    [release] = take_operations(payment)
    assert (release.kind, release.amount) == (OperationKind.VOID, 700)
    payment.apply_gateway_answer(release, Approved("auth-1", 0))
    assert take_events(payment)[-1] == Voided("pay-1", "o-1")


def test_a_capture_beyond_what_a_partially_cancelled_order_keeps_is_refused() -> None:
    payment = authorized(1000)
    payment.request_void(keep_amount=300)

    payment.request_capture(700, "parcel-2")

    [refused] = take_events(payment)
    assert isinstance(refused, CaptureFailed)
    assert refused.fulfillment_id == "parcel-2"
    assert "expected total 300" in refused.error
    assert take_operations(payment) == []


def test_a_waiting_capture_that_no_longer_fits_what_the_order_keeps_is_refused() -> None:
    payment = authorized(1000)
    payment.request_capture(300, "parcel-1")
    payment.request_capture(700, "parcel-2")
    [capture] = take_operations(payment)

    payment.request_void(keep_amount=300)

    assert [(e.fulfillment_id, type(e)) for e in take_events(payment)] == [
        ("parcel-2", CaptureFailed)
    ]
    payment.apply_gateway_answer(capture, Approved("auth-1", 300))
    assert [op.kind for op in take_operations(payment)] == [OperationKind.VOID]


def test_a_void_keeping_parcels_asked_again_after_it_is_done_repeats_voided() -> None:
    payment = authorized(1000)
    captured_parcel(payment, "parcel-1", 300)
    payment.request_void(keep_amount=300)
    [release] = take_operations(payment)
    payment.apply_gateway_answer(release, Approved("auth-1", 0))
    take_events(payment)

    payment.request_void(keep_amount=300)

    assert take_events(payment) == [Voided("pay-1", "o-1")]
    assert take_operations(payment) == []


def test_keeping_more_than_was_authorized_is_a_failed_compensation() -> None:
    payment = authorized(1000)

    payment.request_void(keep_amount=1001)

    [failed] = take_events(payment)
    assert isinstance(failed, CompensationFailed)
    assert take_operations(payment) == []
    assert payment.void_requested is False


def test_voiding_everything_after_a_partial_capture_releases_the_rest_then_refunds() -> None:
    payment = authorized(1000)
    captured_parcel(payment, "parcel-1", 300)
    take_events(payment)

    payment.request_void()

    [release] = take_operations(payment)
    assert (release.kind, release.amount) == (OperationKind.VOID, 700)
    payment.apply_gateway_answer(release, Approved("auth-1", 0))
    [refund] = take_operations(payment)
    assert (refund.kind, refund.amount) == (OperationKind.REFUND, 300)
    assert take_events(payment) == []  # the refund answers the cancellation
    payment.apply_gateway_answer(refund, Approved("ref-1", 300))
    assert payment.status is PaymentStatus.REFUNDED
    assert take_events(payment) == [
        Refunded("pay-1", "o-1", refund.reference or "", 300, 300, "EUR")
    ]


def test_voiding_everything_drops_captures_still_waiting_without_announcing_them() -> None:
    payment = authorized(1000)
    payment.request_capture(300, "parcel-1")
    payment.request_capture(700, "parcel-2")
    [capture] = take_operations(payment)

    payment.request_void()

    assert take_events(payment) == []
    assert payment.captures[1].status is CaptureStatus.FAILED
    payment.apply_gateway_answer(capture, Approved("auth-1", 300))
    assert [op.kind for op in take_operations(payment)] == [OperationKind.VOID]


# -- refunds from a payment captured in part ----------------------------------------------


def test_money_of_a_captured_parcel_may_be_refunded_before_the_others_are_captured() -> None:
    payment = authorized(1000)
    captured_parcel(payment, "parcel-1", 300)

    payment.refund("r1", 100, "damaged")
    with pytest.raises(RefundError):
        payment.refund("r2", 201, "too much")
    assert [op.kind for op in take_operations(payment)] == [OperationKind.REFUND]
    payment.refund_succeeded("r1")
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.PARTIALLY_CAPTURED, 100)

    captured_parcel(payment, "parcel-2", 700)
    assert payment.status is PaymentStatus.PARTIALLY_REFUNDED
    assert payment.refundable == 900


def test_a_payment_captured_in_part_cannot_be_reauthorized() -> None:
    payment = authorized(1000)
    captured_parcel(payment, "parcel-1", 300)
    take_events(payment)

    payment.reauthorize(1500)

    assert take_operations(payment) == []
    assert [type(e).__name__ for e in take_events(payment)] == ["ReauthorizationFailed"]


def test_a_second_void_keeping_less_refunds_only_the_difference() -> None:
    # Two parcels captured; one is lost (keep the other's 1000), then the other too.
    payment = authorized(1300)
    captured_parcel(payment, "parcel-1", 1000)
    captured_parcel(payment, "parcel-2", 300)
    take_events(payment)

    payment.request_void(keep_amount=1000)
    [first] = take_operations(payment)
    assert (first.kind, first.amount) == (OperationKind.REFUND, 300)
    payment.request_void(keep_amount=0)  # before the first refund is answered
    [second] = take_operations(payment)
    assert (second.kind, second.amount) == (OperationKind.REFUND, 1000)

    payment.apply_gateway_answer(first, Approved("auth-1", 300))
    payment.apply_gateway_answer(second, Approved("auth-1", 1000))
    assert payment.refunded_amount == 1300
    assert take_operations(payment) == []
