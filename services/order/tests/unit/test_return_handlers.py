"""The returns' use cases and replies, on the in-memory unit of work (no I/O)."""

from __future__ import annotations

import pytest

from oms_contracts import inventory as inventory_msgs
from oms_contracts import payment as payment_msgs
from oms_contracts import shipping as shipping_msgs
from oms_contracts.common import ReceivedLine
from oms_order.domain.returns import (
    ExceedsReturnable,
    OrderNotShipped,
    ReturnPolicy,
    ReturnStatus,
)
from oms_order.handlers import returns as use_cases
from oms_order.handlers import saga
from oms_order.handlers.orders import IdempotentRequest, OrderNotFound

from .fakes import FakeOrderUnitOfWork
from .orders import fulfilling, shipped


async def a_return(uow: FakeOrderUnitOfWork, quantity: int = 1) -> str:
    answered = await use_cases.request_return(
        "o-1", {"A": quantity}, "too small", uow, customer_id="alice"
    )
    return answered.resource.id


async def test_a_return_of_a_shipped_order_is_approved_and_shipping_asked_for_a_label() -> None:
    uow = FakeOrderUnitOfWork(shipped())

    return_id = await a_return(uow)

    assert uow.returns.by_id[return_id].status is ReturnStatus.APPROVED
    assert uow.sent_types() == [
        "order.return_requested",
        "order.return_approved",
        "shipping.create_return_label",
    ]
    label = uow.sent[-1]
    assert isinstance(label, shipping_msgs.CreateReturnLabel)
    assert [(line.sku, line.quantity, line.location) for line in label.lines] == [
        ("A", 1, "default")
    ]
    assert label.shipping_address.city == "Berlin"
    steps = [entry["step"] for entry in uow.orders.history]
    assert steps == ["return_requested", "return_approved"]
    assert {entry["order_id"] for entry in uow.orders.history} == {"o-1"}


async def test_without_automatic_approval_a_return_waits_for_staff() -> None:
    uow = FakeOrderUnitOfWork(shipped(), return_policy=ReturnPolicy(auto_approve=False))

    return_id = await a_return(uow)
    assert uow.sent_types() == ["order.return_requested"]
    await use_cases.approve_return(return_id, "ops", uow)

    assert uow.sent_types()[-1] == "shipping.create_return_label"


async def test_an_order_that_has_not_shipped_takes_no_return() -> None:
    uow = FakeOrderUnitOfWork(fulfilling())

    with pytest.raises(OrderNotShipped):
        await a_return(uow)
    assert uow.returns.by_id == {} and uow.sent == []


async def test_another_customers_order_is_not_found() -> None:
    uow = FakeOrderUnitOfWork(shipped())

    with pytest.raises(OrderNotFound):
        await use_cases.request_return("o-1", {"A": 1}, "x", uow, customer_id="mallory")


async def test_a_second_return_may_not_take_units_the_first_holds() -> None:
    uow = FakeOrderUnitOfWork(shipped())  # two of A shipped
    await a_return(uow, quantity=2)

    with pytest.raises(ExceedsReturnable):
        await a_return(uow, quantity=1)


async def test_asking_again_with_the_same_key_answers_the_same_return() -> None:
    uow = FakeOrderUnitOfWork(shipped())
    request = IdempotentRequest("alice", "POST /orders/returns", "k-1", "hash-1")

    first = await use_cases.request_return(
        "o-1",
        {"A": 1},
        "x",
        uow,
        customer_id="alice",
        idempotency=request,
        render=lambda r: {"id": r.id},
    )
    again = await use_cases.request_return(
        "o-1",
        {"A": 1},
        "x",
        uow,
        customer_id="alice",
        idempotency=request,
        render=lambda r: {"id": r.id},
    )

    assert again.replayed and again.resource.id == first.resource.id
    assert len(uow.returns.by_id) == 1


async def test_the_warehouse_receipt_returns_the_stock_and_asks_for_the_refund() -> None:
    uow = FakeOrderUnitOfWork(shipped())
    return_id = await a_return(uow, quantity=2)
    uow.sent.clear()

    await saga.return_received(
        shipping_msgs.ReturnReceived(
            order_id="o-1",
            return_id=return_id,
            lines=[
                ReceivedLine(sku="A", quantity=1, condition="resellable"),
                ReceivedLine(sku="A", quantity=1, condition="damaged"),
            ],
        ),
        uow,
    )

    stock, refund = uow.sent
    assert isinstance(stock, inventory_msgs.ReturnStock)
    assert [(line.quantity, line.condition, line.location) for line in stock.lines] == [
        (1, "resellable", "default"),
        (1, "damaged", "default"),
    ]
    assert isinstance(refund, payment_msgs.RefundReturn)
    assert (refund.amount, refund.attempt) == (1000, 0)


async def test_the_refund_confirmation_finishes_the_return_and_tells_subscribers() -> None:
    uow = FakeOrderUnitOfWork(shipped())
    return_id = await a_return(uow)
    await saga.return_received(
        shipping_msgs.ReturnReceived(
            order_id="o-1",
            return_id=return_id,
            lines=[ReceivedLine(sku="A", quantity=1, condition="resellable")],
        ),
        uow,
    )

    await saga.payment_refunded(
        payment_msgs.PaymentRefunded(
            order_id="o-1",
            payment_id="pay-1",
            refund_id="r-1",
            amount=500,
            refunded_total=500,
            currency="EUR",
            return_id=return_id,
        ),
        uow,
    )

    assert uow.returns.by_id[return_id].status is ReturnStatus.REFUNDED
    assert uow.sent_types()[-1] == "order.return_refunded"
    # The order itself is untouched by a return's refund.
    assert uow.orders.by_id["o-1"].status.value == "shipped"


async def test_a_refused_refund_waits_for_an_operator_whose_retry_asks_again() -> None:
    uow = FakeOrderUnitOfWork(shipped())
    return_id = await a_return(uow)
    await saga.return_received(
        shipping_msgs.ReturnReceived(
            order_id="o-1",
            return_id=return_id,
            lines=[ReceivedLine(sku="A", quantity=1, condition="resellable")],
        ),
        uow,
    )

    await saga.refund_failed(
        payment_msgs.RefundFailed(order_id="o-1", return_id=return_id, error="refund_refused"),
        uow,
    )
    assert uow.returns.by_id[return_id].status is ReturnStatus.REQUIRES_ATTENTION
    assert uow.sent_types()[-1] == "order.return_requires_attention"
    await use_cases.retry_return(return_id, "ops", uow)

    retried = uow.sent[-1]
    assert isinstance(retried, payment_msgs.RefundReturn) and retried.attempt == 1


async def test_cancelling_an_approved_return_voids_its_label() -> None:
    uow = FakeOrderUnitOfWork(shipped())
    return_id = await a_return(uow)

    await use_cases.cancel_return(return_id, uow, customer_id="alice")

    assert uow.sent_types()[-2:] == ["order.return_cancelled", "shipping.cancel_return"]
