"""Giving the customer's money back, whatever the payment is doing at the time."""

from __future__ import annotations

import pytest

from oms_payment.domain.model import (
    AuthorizationFailed,
    CaptureFailed,
    CompensationFailed,
    NothingToRefund,
    OperationKind,
    Payment,
    PaymentStatus,
    ReauthorizationFailed,
    Reauthorized,
    Refunded,
    RefundError,
    Voided,
)

from .payments import authorized, captured


def kinds(payment: Payment) -> list[OperationKind]:
    return [operation.kind for operation in payment.operations]


def test_a_void_asked_for_while_a_capture_is_in_flight_refunds_once_it_lands() -> None:
    payment = authorized()
    payment.request_capture()
    payment.operations.clear()
    payment.request_void()
    assert payment.operations == []
    payment.capture_succeeded(1000)
    assert kinds(payment) == [OperationKind.REFUND]
    assert payment.operations[0].amount == 1000


def test_a_void_asked_for_while_a_capture_is_in_flight_voids_if_the_capture_fails() -> None:
    payment = authorized()
    payment.request_capture()
    payment.operations.clear()
    payment.request_void()
    payment.capture_failed("capture_refused")
    assert kinds(payment) == [OperationKind.VOID]
    assert payment.events == []


def test_a_capture_that_fails_with_nobody_cancelling_is_announced() -> None:
    payment = authorized()
    payment.request_capture()
    payment.capture_failed("capture_refused")
    assert payment.events == [CaptureFailed("pay-1", "o-1", "capture_refused")]


def test_voiding_a_captured_payment_refunds_all_of_it() -> None:
    payment = captured()
    payment.request_void()
    assert kinds(payment) == [OperationKind.REFUND]
    refund_id = payment.operations[0].reference
    assert refund_id is not None
    payment.refund_succeeded(refund_id)
    assert payment.status is PaymentStatus.REFUNDED
    assert payment.refunded_amount == 1000
    assert payment.events == [Refunded("pay-1", "o-1", refund_id, 1000, 1000, "EUR")]


def test_asking_twice_to_void_a_captured_payment_refunds_once() -> None:
    payment = captured()
    payment.request_void()
    payment.request_void()
    assert kinds(payment) == [OperationKind.REFUND]
    assert payment.events == []


def test_a_fully_refunded_payment_repeats_the_refund_when_asked_to_void_again() -> None:
    payment = captured()
    payment.request_void()
    payment.refund_succeeded(payment.operations[0].reference or "")
    payment.events.clear()
    payment.operations.clear()
    payment.request_void()
    assert payment.operations == []
    assert [type(e) for e in payment.events] == [Refunded]


def test_partial_refunds_never_exceed_what_was_captured() -> None:
    payment = captured()
    payment.refund("r1", 300, "damaged")
    with pytest.raises(RefundError):
        payment.refund("r2", 701, "more than is left")
    payment.refund("r2", 700, "returned")
    with pytest.raises(NothingToRefund):
        payment.refund("r3", 1, "one cent more")
    payment.refund_succeeded("r1")
    assert payment.status is PaymentStatus.PARTIALLY_REFUNDED
    payment.refund_succeeded("r2")
    assert payment.status is PaymentStatus.REFUNDED


def test_a_failed_refund_frees_its_amount_and_is_announced() -> None:
    payment = captured()
    payment.refund("r1", 1000, "returned")
    payment.refund_failed("r1", "HTTP 502")
    assert payment.refundable == 1000
    assert payment.events == [CompensationFailed("pay-1", "o-1", "HTTP 502")]


def test_an_uncaptured_payment_has_nothing_to_refund() -> None:
    with pytest.raises(NothingToRefund):
        authorized().refund("r1", 100, "why")


def test_a_refund_amount_must_be_positive() -> None:
    with pytest.raises(RefundError):
        captured().refund("r1", 0, "nothing")


def test_giving_up_on_an_unanswering_gateway_fails_the_payment_and_looks_for_lost_holds() -> None:
    payment = Payment.start(
        payment_id="pay-1", order_id="o-1", amount=1000, currency="EUR", token="tok_timeout"
    )
    payment.operations.clear()
    payment.give_up_authorization()
    assert payment.status is PaymentStatus.FAILED
    assert payment.events == [AuthorizationFailed("pay-1", "o-1", "payment_unavailable", None)]
    assert kinds(payment) == [OperationKind.RECONCILE]


def test_a_void_that_keeps_failing_is_announced_so_the_order_can_be_flagged() -> None:
    payment = authorized()
    payment.compensation_failed("HTTP 502 void_refused")
    assert payment.events == [CompensationFailed("pay-1", "o-1", "HTTP 502 void_refused")]


def test_voiding_a_failed_payment_is_already_true() -> None:
    payment = Payment.start(
        payment_id="pay-1", order_id="o-1", amount=1000, currency="EUR", token="tok_declined"
    )
    payment.authorization_failed("payment_declined", "card_declined")
    payment.events.clear()
    payment.operations.clear()
    payment.request_void()
    assert payment.events == [Voided("pay-1", "o-1")]
    assert payment.operations == []


def test_a_new_total_places_a_new_hold_first_and_releases_the_old_one_after() -> None:
    payment = authorized()
    payment.reauthorize(1500)
    assert [(op.kind, op.amount, op.reference) for op in payment.operations] == [
        (OperationKind.AUTHORIZE, 1500, "re1")
    ]
    assert payment.operations[0].idempotency_key == "pay-1:authorize:re1"
    payment.operations.clear()
    payment.authorization_approved("auth_2", "re1")
    assert (payment.gateway_authorization_id, payment.authorized_amount) == ("auth_2", 1500)
    assert [(op.kind, op.reference) for op in payment.operations] == [
        (OperationKind.RELEASE_OLD_HOLD, "auth-1")
    ]
    assert payment.events == [Reauthorized("pay-1", "o-1", 1500, "EUR")]


def test_a_refused_new_total_keeps_the_old_hold() -> None:
    payment = authorized()
    payment.reauthorize(1500)
    payment.reauthorization_failed("payment_declined")
    assert (payment.gateway_authorization_id, payment.authorized_amount) == ("auth-1", 1000)
    assert payment.events == [ReauthorizationFailed("pay-1", "o-1", "payment_declined")]


def test_a_captured_payment_cannot_be_reauthorized() -> None:
    payment = captured()
    payment.reauthorize(1500)
    assert payment.operations == []
    assert payment.events == [ReauthorizationFailed("pay-1", "o-1", "not_reauthorizable")]
