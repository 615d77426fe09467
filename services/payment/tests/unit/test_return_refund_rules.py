"""A return's refund, the payment's rules: from the captured money, never above what
is captured and not refunded, one refund per (return, attempt), and a return
refunded at most once whatever is asked again."""

from __future__ import annotations

from oms_payment.domain.model import (
    Approved,
    CompensationFailed,
    Declined,
    GaveUp,
    Operation,
    OperationKind,
    Payment,
    PaymentStatus,
    Refunded,
    ReturnRefundFailed,
)

from .payments import authorized
from .payments import captured as captured_payment


def captured(amount: int = 1000, of: int | None = None) -> Payment:
    return captured_payment(amount, of=of, parcel="parcel-1")


def the_refund_asked(payment: Payment) -> Operation:
    [operation] = payment.operations
    payment.operations.clear()
    return operation


def test_a_returns_refund_goes_to_the_gateway_keyed_by_its_return_and_attempt() -> None:
    payment = captured(1000)

    payment.refund_return("ret-1", 0, 300)

    operation = the_refund_asked(payment)
    assert (operation.kind, operation.amount, operation.reference) == (
        OperationKind.REFUND,
        300,
        "return-ret-1-0",
    )
    assert operation.idempotency_key == "pay-1:refund:return-ret-1-0"
    assert payment.refundable == 700
    assert payment.events == []  # said once the gateway answers


def test_a_refund_the_gateway_makes_is_announced_with_its_return() -> None:
    payment = captured(1000)
    payment.refund_return("ret-1", 0, 300)

    payment.apply_gateway_answer(the_refund_asked(payment), Approved("ref_1", 300))

    assert payment.events == [
        Refunded("pay-1", "o-1", "return-ret-1-0", 300, 300, "EUR", return_id="ret-1")
    ]
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, 300)


def test_the_same_attempt_asked_again_refunds_nothing_more_and_repeats_the_answer() -> None:
    payment = captured(1000)
    payment.refund_return("ret-1", 0, 300)
    payment.refund_return("ret-1", 0, 300)  # while at the gateway: its answer will come
    assert len(payment.operations) == 1
    payment.apply_gateway_answer(the_refund_asked(payment), Approved("ref_1", 300))
    payment.events.clear()

    payment.refund_return("ret-1", 0, 300)

    assert payment.operations == []
    assert payment.events == [
        Refunded("pay-1", "o-1", "return-ret-1-0", 300, 300, "EUR", return_id="ret-1")
    ]
    assert payment.refunded_amount == 300


def test_a_later_attempt_of_a_refunded_return_refunds_nothing_more() -> None:
    payment = captured(1000)
    payment.refund_return("ret-1", 0, 300)
    payment.apply_gateway_answer(the_refund_asked(payment), Approved("ref_1", 300))
    payment.events.clear()

    payment.refund_return("ret-1", 1, 300)

    assert payment.operations == []
    assert [e.refund_id for e in payment.events if isinstance(e, Refunded)] == ["return-ret-1-0"]
    assert payment.refunded_amount == 300


def test_several_returns_are_refunded_in_part_until_the_captured_money_is_all_back() -> None:
    payment = captured(1000)
    for return_id, amount in (("ret-1", 300), ("ret-2", 500), ("ret-3", 200)):
        payment.refund_return(return_id, 0, amount)
        payment.apply_gateway_answer(the_refund_asked(payment), Approved("ref", amount))

    refunded = [e for e in payment.events if isinstance(e, Refunded)]
    assert [(e.return_id, e.amount, e.refunded_total) for e in refunded] == [
        ("ret-1", 300, 300),
        ("ret-2", 500, 800),
        ("ret-3", 200, 1000),
    ]
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, 1000)


def test_a_refund_above_what_is_captured_and_not_refunded_is_refused_at_once() -> None:
    payment = captured(1000)
    payment.refund_return("ret-1", 0, 800)  # at the gateway: counts already

    payment.refund_return("ret-2", 0, 300)

    assert payment.events == [
        ReturnRefundFailed(
            "pay-1",
            "o-1",
            "ret-2",
            "refund_exceeds_refundable: 300 asked, 200 may still be refunded "
            "(captured 1000, refunded or being refunded 800)",
        )
    ]
    assert len(payment.operations) == 1  # ret-1's only


def test_a_refund_is_only_ever_from_money_captured_so_far() -> None:
    payment = captured(400, of=1000)  # one parcel of two captured

    payment.refund_return("ret-1", 0, 500)
    payment.refund_return("ret-2", 0, 400)

    [refused] = payment.events
    assert isinstance(refused, ReturnRefundFailed)
    assert refused.return_id == "ret-1"
    assert refused.error.startswith("refund_exceeds_refundable: 500 asked, 400 may still be")
    assert [op.amount for op in payment.operations] == [400]
    assert payment.status is PaymentStatus.PARTIALLY_CAPTURED


def test_a_payment_with_nothing_captured_refuses_a_returns_refund() -> None:
    payment = authorized(1000)

    payment.refund_return("ret-1", 0, 100)

    assert payment.events == [
        ReturnRefundFailed("pay-1", "o-1", "ret-1", "nothing_captured: the payment is authorized")
    ]
    assert payment.operations == []


def test_a_refund_the_gateway_refuses_is_answered_refund_failed_not_as_a_compensation() -> None:
    payment = captured(1000)
    payment.refund_return("ret-1", 0, 300)

    payment.apply_gateway_answer(the_refund_asked(payment), Declined("refund_refused"))

    assert payment.events == [ReturnRefundFailed("pay-1", "o-1", "ret-1", "refund_refused")]
    assert not any(isinstance(e, CompensationFailed) for e in payment.events)
    # No money moved: it may be refunded again.
    assert (payment.refundable, payment.refunded_amount) == (1000, 0)


def test_a_refused_attempt_asked_again_is_refused_again_without_asking_the_gateway() -> None:
    payment = captured(1000)
    payment.refund_return("ret-1", 0, 300)
    payment.apply_gateway_answer(the_refund_asked(payment), Declined("refund_refused"))
    payment.events.clear()

    payment.refund_return("ret-1", 0, 300)

    assert payment.events == [ReturnRefundFailed("pay-1", "o-1", "ret-1", "refund_refused")]
    assert payment.operations == []


def test_an_operators_next_attempt_after_a_refusal_is_a_new_refund_under_a_new_key() -> None:
    payment = captured(1000)
    payment.refund_return("ret-1", 0, 300)
    payment.apply_gateway_answer(the_refund_asked(payment), Declined("refund_refused"))
    payment.events.clear()

    payment.refund_return("ret-1", 1, 300)
    retried = the_refund_asked(payment)
    payment.apply_gateway_answer(retried, Approved("ref_2", 300))

    assert retried.idempotency_key == "pay-1:refund:return-ret-1-1"
    assert payment.events == [
        Refunded("pay-1", "o-1", "return-ret-1-1", 300, 300, "EUR", return_id="ret-1")
    ]
    assert [(r.id, r.status) for r in payment.refunds] == [
        ("return-ret-1-0", "failed"),
        ("return-ret-1-1", "succeeded"),
    ]


def test_a_refund_the_gateway_never_answered_fails_visibly_as_unavailable() -> None:
    payment = captured(1000)
    payment.refund_return("ret-1", 0, 300)

    payment.apply_gateway_answer(the_refund_asked(payment), GaveUp("ReadTimeout"))

    assert payment.events == [
        ReturnRefundFailed("pay-1", "o-1", "ret-1", "gateway_unavailable: ReadTimeout")
    ]
    [refund] = payment.refunds
    assert (refund.status, refund.unanswered) == ("failed", True)


def test_after_an_unanswered_refund_a_new_attempt_asks_again_under_the_first_key() -> None:
    # The gateway may have refunded without us hearing: a new key could refund twice.
    payment = captured(1000)
    payment.refund_return("ret-1", 0, 300)
    first = the_refund_asked(payment)
    payment.apply_gateway_answer(first, GaveUp("ReadTimeout"))
    payment.events.clear()

    payment.refund_return("ret-1", 1, 300)

    again = the_refund_asked(payment)
    assert again.idempotency_key == first.idempotency_key == "pay-1:refund:return-ret-1-0"
    payment.apply_gateway_answer(again, Approved("ref_1", 300))
    assert payment.events == [
        Refunded("pay-1", "o-1", "return-ret-1-0", 300, 300, "EUR", return_id="ret-1")
    ]
    assert [(r.id, r.status, r.error) for r in payment.refunds] == [
        ("return-ret-1-0", "succeeded", None)
    ]


def test_an_unanswered_refund_whose_money_went_elsewhere_meanwhile_is_refused() -> None:
    payment = captured(1000)
    payment.refund_return("ret-1", 0, 300)
    payment.apply_gateway_answer(the_refund_asked(payment), GaveUp("ReadTimeout"))
    payment.refund_return("ret-2", 0, 800)
    payment.events.clear()

    payment.refund_return("ret-1", 1, 300)

    [refused] = payment.events
    assert isinstance(refused, ReturnRefundFailed)
    assert refused.error.startswith("refund_exceeds_refundable: 300 asked, 200 may still be")
    assert [op.reference for op in payment.operations] == ["return-ret-2-0"]


def test_a_returns_refund_is_not_repeated_as_a_cancellations_refund() -> None:
    # A re-sent cancellation repeats the cancellation's refund, never a return's.
    payment = captured(1000)
    payment.refund_return("ret-1", 0, 300)
    payment.apply_gateway_answer(the_refund_asked(payment), Approved("ref_1", 300))
    payment.request_void()
    cancellation = the_refund_asked(payment)
    assert cancellation.amount == 700
    payment.apply_gateway_answer(cancellation, Approved("ref_2", 700))
    payment.events.clear()

    payment.request_void()

    assert payment.events == [Refunded("pay-1", "o-1", "pay-1-r2", 700, 1000, "EUR")]
