"""What each final answer of the gateway means for a payment, per operation: the
table the gateway worker used to keep, now the payment's own rule."""

from __future__ import annotations

from oms_payment.domain.model import (
    Approved,
    AuthorizationFailed,
    CaptureFailed,
    CompensationFailed,
    Declined,
    GaveUp,
    HoldMayRemain,
    Operation,
    OperationKind,
    PaymentStatus,
    ReauthorizationFailed,
    Reauthorized,
)

from .payments import authorized, pending


def test_an_approved_authorization_authorizes_the_payment_with_the_gateways_id() -> None:
    payment = pending()

    payment.apply_gateway_answer(payment.operations[0], Approved("auth-1", 1000))

    assert (payment.status, payment.gateway_authorization_id) == (
        PaymentStatus.AUTHORIZED,
        "auth-1",
    )


def test_a_declined_authorization_fails_the_payment_as_declined_with_the_gateways_code() -> None:
    payment = pending()

    payment.apply_gateway_answer(payment.operations[0], Declined("insufficient_funds"))

    assert payment.events == [
        AuthorizationFailed("pay-1", "o-1", "payment_declined", "insufficient_funds")
    ]


def test_an_authorization_given_up_fails_as_unavailable_and_looks_for_a_hold_placed_anyway() -> (
    None
):
    payment = pending()
    payment.operations.clear()

    payment.apply_gateway_answer(
        Operation("pay-1", OperationKind.AUTHORIZE, 1000), GaveUp("timeout")
    )

    assert payment.events == [AuthorizationFailed("pay-1", "o-1", "payment_unavailable", None)]
    assert [operation.kind for operation in payment.operations] == [OperationKind.RECONCILE]


def test_a_declined_reauthorization_keeps_the_old_hold_and_says_declined() -> None:
    payment = authorized()
    payment.reauthorize(1500)
    operation = payment.operations[-1]

    payment.apply_gateway_answer(operation, Declined("do_not_honor"))

    assert payment.status is PaymentStatus.AUTHORIZED
    assert payment.authorized_amount == 1000
    assert payment.events == [ReauthorizationFailed("pay-1", "o-1", "payment_declined")]


def test_an_approved_reauthorization_holds_the_new_total_and_releases_the_old_hold() -> None:
    payment = authorized()
    payment.reauthorize(1500)

    payment.apply_gateway_answer(payment.operations[-1], Approved("auth-2", 1500))

    assert payment.authorized_amount == 1500
    assert payment.events == [Reauthorized("pay-1", "o-1", 1500, "EUR")]
    assert payment.operations[-1] == Operation("pay-1", OperationKind.RELEASE_OLD_HOLD, 0, "auth-1")


def test_a_capture_given_up_is_announced_as_failed_with_the_error_and_worth_asking_again() -> None:
    payment = authorized()
    payment.request_capture()

    payment.apply_gateway_answer(payment.operations[-1], GaveUp("gateway down"))

    assert payment.events == [CaptureFailed("pay-1", "o-1", "gateway down", retryable=True)]


def test_a_capture_the_gateway_kept_answering_with_a_server_error_is_not_asked_again() -> None:
    payment = authorized()
    payment.request_capture()

    payment.apply_gateway_answer(
        payment.operations[-1], GaveUp("HTTP 502 capture_refused", answered=True)
    )

    assert payment.events == [
        CaptureFailed("pay-1", "o-1", "HTTP 502 capture_refused", retryable=False)
    ]


def test_a_capture_the_gateway_refused_is_not_worth_asking_again() -> None:
    payment = authorized()
    payment.request_capture()

    payment.apply_gateway_answer(payment.operations[-1], Declined("capture_refused"))

    assert payment.events == [CaptureFailed("pay-1", "o-1", "capture_refused", retryable=False)]


def test_a_void_the_gateway_never_answered_is_worth_asking_again() -> None:
    payment = authorized()
    payment.request_void()

    payment.apply_gateway_answer(payment.operations[-1], GaveUp("gateway down"))

    assert payment.events == [CompensationFailed("pay-1", "o-1", "gateway down", retryable=True)]


def test_a_refused_void_is_a_failed_compensation_for_the_saga() -> None:
    payment = authorized()
    payment.request_void()

    payment.apply_gateway_answer(payment.operations[-1], Declined("void_refused"))

    assert payment.events == [CompensationFailed("pay-1", "o-1", "void_refused")]


def test_an_old_hold_that_could_not_be_released_is_left_for_a_person() -> None:
    payment = authorized()

    payment.apply_gateway_answer(
        Operation("pay-1", OperationKind.RELEASE_OLD_HOLD, 0, "auth-0"), GaveUp("timeout")
    )

    assert payment.events == [HoldMayRemain("pay-1", "o-1", "timeout")]
    assert payment.status is PaymentStatus.AUTHORIZED
