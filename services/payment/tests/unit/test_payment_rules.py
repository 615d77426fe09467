"""A payment's life: authorize, capture, void, and answers to repeated requests."""

from __future__ import annotations

from oms_payment.domain.model import (
    AuthorizationFailed,
    Authorized,
    Captured,
    Operation,
    OperationKind,
    Payment,
    PaymentStatus,
    Voided,
)


def new_payment(payment_id: str = "pay-1", amount: int = 4200) -> Payment:
    return Payment.start(
        payment_id=payment_id, order_id="order-1", amount=amount, currency="EUR", token="tok_ok"
    )


# -- authorization ---------------------------------------------------------------------


def test_starting_a_payment_queues_exactly_one_authorization_for_the_full_amount() -> None:
    payment = new_payment(amount=4200)

    assert payment.status is PaymentStatus.PENDING
    assert payment.operations == [Operation("pay-1", OperationKind.AUTHORIZE, 4200)]
    assert payment.events == []


def test_the_authorization_carries_an_idempotency_key_derived_from_the_payment() -> None:
    payment = new_payment(payment_id="pay-77")

    assert payment.operations[0].idempotency_key == "pay-77:authorize"


def test_an_approved_authorization_makes_the_payment_authorized_and_announces_it() -> None:
    payment = new_payment(amount=4200)

    payment.authorization_approved("auth-123")

    assert payment.status is PaymentStatus.AUTHORIZED
    assert payment.authorized_amount == 4200
    assert payment.gateway_authorization_id == "auth-123"
    assert payment.events == [Authorized("pay-1", "order-1", 4200, "EUR")]


def test_a_declined_authorization_fails_the_payment_with_the_reason_and_decline_code() -> None:
    payment = new_payment()

    payment.authorization_failed("payment_declined", "insufficient_funds")

    assert payment.status is PaymentStatus.FAILED
    assert (payment.failure_reason, payment.decline_code) == (
        "payment_declined",
        "insufficient_funds",
    )
    assert payment.authorized_amount == 0
    assert payment.events == [
        AuthorizationFailed("pay-1", "order-1", "payment_declined", "insufficient_funds")
    ]


def test_an_approval_reported_twice_announces_the_authorization_only_once() -> None:
    payment = new_payment()
    payment.authorization_approved("auth-123")

    payment.authorization_approved("auth-999")

    assert payment.gateway_authorization_id == "auth-123"
    assert len(payment.events) == 1


def test_a_decline_reported_after_an_approval_does_not_fail_the_payment() -> None:
    payment = new_payment()
    payment.authorization_approved("auth-123")

    payment.authorization_failed("payment_declined", "do_not_honor")

    assert payment.status is PaymentStatus.AUTHORIZED
    assert payment.failure_reason is None
    assert payment.events == [Authorized("pay-1", "order-1", 4200, "EUR")]


def test_an_approval_reported_after_a_decline_does_not_authorize_the_payment() -> None:
    payment = new_payment()
    payment.authorization_failed("payment_declined", "do_not_honor")

    payment.authorization_approved("auth-123")

    assert payment.status is PaymentStatus.FAILED
    assert payment.authorized_amount == 0
    assert len(payment.events) == 1


# -- capture ---------------------------------------------------------------------------


def test_capturing_an_authorized_payment_queues_a_capture_of_the_authorized_amount() -> None:
    payment = new_payment(amount=4200)
    payment.authorization_approved("auth-123")

    payment.request_capture()

    assert payment.operations[-1] == Operation("pay-1", OperationKind.CAPTURE, 4200)
    assert payment.status is PaymentStatus.AUTHORIZED


def test_a_capture_requested_before_authorization_queues_nothing() -> None:
    payment = new_payment()

    payment.request_capture()

    assert [op.kind for op in payment.operations] == [OperationKind.AUTHORIZE]
    assert payment.events == []


def test_a_capture_requested_for_a_failed_payment_queues_nothing() -> None:
    payment = new_payment()
    payment.authorization_failed("payment_declined")

    payment.request_capture()

    assert [op.kind for op in payment.operations] == [OperationKind.AUTHORIZE]
    assert len(payment.events) == 1


def test_a_successful_capture_settles_the_payment_and_announces_the_captured_amount() -> None:
    payment = new_payment(amount=4200)
    payment.authorization_approved("auth-123")
    payment.request_capture()

    payment.capture_succeeded(4200)

    assert payment.status is PaymentStatus.CAPTURED
    assert payment.captured_amount == 4200
    assert payment.events[-1] == Captured("pay-1", "order-1", 4200, "EUR", None, 4200)


def test_a_capture_success_reported_twice_announces_the_capture_only_once() -> None:
    payment = new_payment()
    payment.authorization_approved("auth-123")
    payment.request_capture()
    payment.capture_succeeded(4200)

    payment.capture_succeeded(4200)

    assert [type(e) for e in payment.events] == [Authorized, Captured]


def test_a_capture_requested_again_after_settlement_re_announces_the_capture() -> None:
    payment = new_payment(amount=4200)
    payment.authorization_approved("auth-123")
    payment.request_capture()
    payment.capture_succeeded(4200)

    payment.request_capture()

    assert payment.events[-1] == Captured(
        "pay-1", "order-1", 4200, "EUR", None, 4200, repeated=True
    )
    assert [op.kind for op in payment.operations].count(OperationKind.CAPTURE) == 1


# -- void ------------------------------------------------------------------------------


def test_a_void_requested_while_authorization_is_in_flight_is_remembered() -> None:
    payment = new_payment()

    payment.request_void()

    assert payment.void_requested is True
    assert payment.status is PaymentStatus.PENDING
    assert [op.kind for op in payment.operations] == [OperationKind.AUTHORIZE]
    assert payment.events == []


def test_an_approval_arriving_after_a_void_request_queues_the_void_of_the_hold() -> None:
    payment = new_payment(amount=4200)
    payment.request_void()

    payment.authorization_approved("auth-123")

    assert payment.operations[-1] == Operation("pay-1", OperationKind.VOID, 4200)


def test_voiding_an_authorized_payment_queues_a_void_of_the_authorized_amount() -> None:
    payment = new_payment(amount=4200)
    payment.authorization_approved("auth-123")

    payment.request_void()

    assert payment.operations[-1] == Operation("pay-1", OperationKind.VOID, 4200)
    assert payment.status is PaymentStatus.AUTHORIZED


def test_a_successful_void_makes_the_payment_voided_and_announces_it() -> None:
    payment = new_payment()
    payment.authorization_approved("auth-123")
    payment.request_void()

    payment.void_succeeded()

    assert payment.status is PaymentStatus.VOIDED
    assert payment.events[-1] == Voided("pay-1", "order-1")


def test_voiding_a_failed_payment_announces_voided_at_once_without_a_gateway_call() -> None:
    payment = new_payment()
    payment.authorization_failed("payment_declined")

    payment.request_void()

    assert payment.events[-1] == Voided("pay-1", "order-1")
    assert [op.kind for op in payment.operations] == [OperationKind.AUTHORIZE]
    assert payment.status is PaymentStatus.FAILED


def test_voiding_a_voided_payment_again_announces_voided_without_a_gateway_call() -> None:
    payment = new_payment()
    payment.authorization_approved("auth-123")
    payment.request_void()
    payment.void_succeeded()
    operations_before = list(payment.operations)

    payment.request_void()

    assert payment.events[-1] == Voided("pay-1", "order-1")
    assert payment.operations == operations_before


def test_a_void_that_arrives_before_the_authorization_request_leaves_a_voided_payment() -> None:
    payment = Payment.cancelled_before_authorization(payment_id="pay-1", order_id="order-1")

    assert payment.status is PaymentStatus.VOIDED
    assert payment.operations == []
    assert payment.events == [Voided("pay-1", "order-1")]


def test_a_late_authorization_request_for_a_cancelled_order_is_refused_not_charged() -> None:
    payment = Payment.cancelled_before_authorization(payment_id="pay-1", order_id="order-1")

    payment.repeat_outcome()

    assert payment.events[-1] == AuthorizationFailed("pay-1", "order-1", "order_cancelled", None)
    assert payment.operations == []


# -- repeated authorization requests ---------------------------------------------------


def test_a_repeated_authorization_request_for_an_authorized_payment_repeats_approval() -> None:
    payment = new_payment(amount=4200)
    payment.authorization_approved("auth-123")

    payment.repeat_outcome()

    assert payment.events == [Authorized("pay-1", "order-1", 4200, "EUR")] * 2
    assert len(payment.operations) == 1


def test_a_repeated_authorization_request_for_a_captured_payment_repeats_the_approval() -> None:
    payment = new_payment(amount=4200)
    payment.authorization_approved("auth-123")
    payment.request_capture()
    payment.capture_succeeded(4200)

    payment.repeat_outcome()

    assert payment.events[-1] == Authorized("pay-1", "order-1", 4200, "EUR")


def test_a_repeated_authorization_request_for_a_declined_payment_repeats_the_decline() -> None:
    payment = new_payment()
    payment.authorization_failed("payment_unavailable", None)

    payment.repeat_outcome()

    assert (
        payment.events == [AuthorizationFailed("pay-1", "order-1", "payment_unavailable", None)] * 2
    )


def test_a_repeated_authorization_request_while_still_pending_announces_nothing_yet() -> None:
    payment = new_payment()

    payment.repeat_outcome()

    assert payment.events == []
    assert len(payment.operations) == 1


# -- idempotency keys ------------------------------------------------------------------


def test_each_kind_of_gateway_operation_on_a_payment_has_its_own_idempotency_key() -> None:
    keys = {Operation("pay-1", kind, 100).idempotency_key for kind in OperationKind}

    assert len(keys) == len(OperationKind)
    assert all(key.startswith("pay-1:") for key in keys)


def test_each_refund_of_a_payment_has_its_own_idempotency_key() -> None:
    first = Operation("pay-1", OperationKind.REFUND, 100, "r1")
    second = Operation("pay-1", OperationKind.REFUND, 100, "r2")

    assert (first.idempotency_key, second.idempotency_key) == ("pay-1:refund:r1", "pay-1:refund:r2")


def test_the_same_operation_on_two_payments_has_different_idempotency_keys() -> None:
    first = Operation("pay-1", OperationKind.CAPTURE, 100)
    second = Operation("pay-2", OperationKind.CAPTURE, 100)

    assert first.idempotency_key != second.idempotency_key


def test_a_retried_capture_reuses_the_same_idempotency_key_so_it_charges_once() -> None:
    payment = new_payment()
    payment.authorization_approved("auth-123")

    payment.request_capture()
    payment.request_capture()

    captures = [op for op in payment.operations if op.kind is OperationKind.CAPTURE]
    assert {op.idempotency_key for op in captures} == {"pay-1:capture"}
