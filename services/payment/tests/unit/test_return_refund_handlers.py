"""`payment.refund_return` on an in-memory unit of work: the command loads the order's
payment and asks it for the return's refund; the gateway's answer comes back as the
gateway worker applies it, and the saga hears `payment.refunded` (naming the return)
or `payment.refund_failed`."""

from __future__ import annotations

from oms_contracts import payment as msgs
from oms_payment.domain.model import Approved, Declined, GaveUp, PaymentStatus
from oms_payment.handlers import messages

from .fakes import FakePaymentUnitOfWork, the_gateway_answers
from .payments import authorized
from .test_payment_handlers import capture


async def captured(amount: int = 1000) -> FakePaymentUnitOfWork:
    """A unit of work holding the order's payment, `amount` captured."""
    uow = FakePaymentUnitOfWork(authorized(amount))
    await messages.capture_payment(capture(amount, "parcel-1"), uow)
    await the_gateway_answers(uow, Approved("auth-1", amount))
    uow.sent.clear()
    return uow


def refund_return(return_id: str, amount: int, attempt: int = 0) -> msgs.RefundReturn:
    return msgs.RefundReturn(order_id="o-1", return_id=return_id, amount=amount, attempt=attempt)


def refunded(return_id: str, attempt: int, amount: int, total: int) -> msgs.PaymentRefunded:
    return msgs.PaymentRefunded(
        order_id="o-1",
        payment_id="pay-1",
        refund_id=f"return-{return_id}-{attempt}",
        amount=amount,
        refunded_total=total,
        currency="EUR",
        return_id=return_id,
    )


def refund_failed(return_id: str, error: str) -> msgs.RefundFailed:
    return msgs.RefundFailed(order_id="o-1", payment_id="pay-1", return_id=return_id, error=error)


async def test_a_returns_refund_is_made_at_the_gateway_and_answered_refunded_with_the_return() -> (
    None
):
    uow = await captured(1000)

    await messages.refund_return(refund_return("ret-1", 300), uow)
    assert uow.sent == []  # the gateway has not answered yet
    operation = await the_gateway_answers(uow, Approved("ref_1", 300))

    assert (operation.idempotency_key, operation.amount) == ("pay-1:refund:return-ret-1-0", 300)
    assert uow.sent == [refunded("ret-1", 0, 300, 300)]
    payment = uow.payments.by_id["pay-1"]
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, 300)


async def test_a_refund_command_sent_again_refunds_once_and_repeats_its_answer() -> None:
    uow = await captured(1000)

    await messages.refund_return(refund_return("ret-1", 300), uow)
    await messages.refund_return(refund_return("ret-1", 300), uow)  # before the answer
    await the_gateway_answers(uow, Approved("ref_1", 300))
    await messages.refund_return(refund_return("ret-1", 300), uow)  # after it

    assert uow.queued == []
    assert uow.sent == [refunded("ret-1", 0, 300, 300), refunded("ret-1", 0, 300, 300)]
    assert uow.payments.by_id["pay-1"].refunded_amount == 300


async def test_refunds_of_several_returns_add_up_and_one_beyond_the_rest_is_refused() -> None:
    uow = await captured(1000)

    await messages.refund_return(refund_return("ret-1", 300), uow)
    await the_gateway_answers(uow, Approved("ref_1", 300))
    await messages.refund_return(refund_return("ret-2", 500), uow)
    await the_gateway_answers(uow, Approved("ref_2", 500))
    await messages.refund_return(refund_return("ret-3", 300), uow)

    assert uow.sent == [
        refunded("ret-1", 0, 300, 300),
        refunded("ret-2", 0, 500, 800),
        refund_failed(
            "ret-3",
            "refund_exceeds_refundable: 300 asked, 200 may still be refunded "
            "(captured 1000, refunded or being refunded 800)",
        ),
    ]
    assert uow.queued == []
    assert uow.payments.by_id["pay-1"].refunded_amount == 800


async def test_a_refund_the_gateway_refuses_is_answered_refund_failed_and_a_retry_refunds() -> None:
    uow = await captured(1000)
    await messages.refund_return(refund_return("ret-1", 300), uow)
    await the_gateway_answers(uow, Declined("refund_refused"))
    await messages.refund_return(refund_return("ret-1", 300), uow)  # the same attempt again

    await messages.refund_return(refund_return("ret-1", 300, attempt=1), uow)  # an operator's
    retried = await the_gateway_answers(uow, Approved("ref_2", 300))

    assert retried.idempotency_key == "pay-1:refund:return-ret-1-1"
    assert uow.sent == [
        refund_failed("ret-1", "refund_refused"),
        refund_failed("ret-1", "refund_refused"),
        refunded("ret-1", 1, 300, 300),
    ]
    assert uow.payments.by_id["pay-1"].refunded_amount == 300


async def test_a_refund_the_gateway_never_answered_is_retried_under_its_first_key() -> None:
    uow = await captured(1000)
    await messages.refund_return(refund_return("ret-1", 300), uow)
    first = await the_gateway_answers(uow, GaveUp("HTTP 503 unavailable"))

    await messages.refund_return(refund_return("ret-1", 300, attempt=1), uow)
    again = await the_gateway_answers(uow, Approved("ref_1", 300))

    assert again.idempotency_key == first.idempotency_key
    assert uow.sent == [
        refund_failed("ret-1", "gateway_unavailable: HTTP 503 unavailable"),
        refunded("ret-1", 0, 300, 300),
    ]


async def test_a_refund_for_an_order_without_payment_changes_nothing() -> None:
    uow = FakePaymentUnitOfWork()

    await messages.refund_return(refund_return("ret-1", 300), uow)

    assert (uow.sent, uow.queued, uow.payments.by_id) == ([], [], {})
