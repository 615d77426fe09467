"""The order service's handlers on an in-memory unit of work: each reply loads the
order, moves it one step and commits; what that sends is the saga's next step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oms_contracts import inventory as inventory_msgs
from oms_contracts import payment as payment_msgs
from oms_contracts import shipping as shipping_msgs
from oms_contracts.common import PricedLine
from oms_order.domain.model import OrderStatus
from oms_order.handlers import deadlines, saga
from oms_order.handlers import orders as use_cases

from .fakes import FakeOrderUnitOfWork
from .orders import HOME, awaiting_payment, paid, placed, shipped


def stock_reserved(order_id: str = "o-1") -> inventory_msgs.StockReserved:
    return inventory_msgs.StockReserved(
        order_id=order_id,
        lines=[PricedLine(sku="A", quantity=2, unit_price=500)],
        currency="EUR",
    )


async def test_reserved_stock_moves_the_order_on_and_asks_payment_to_authorize_the_total() -> None:
    uow = FakeOrderUnitOfWork(placed())

    await saga.stock_reserved(stock_reserved(), uow)

    order = uow.orders.by_id["o-1"]
    assert order.status is OrderStatus.AWAITING_PAYMENT
    assert uow.sent_types() == ["order.awaiting_payment", "payment.authorize_payment"]
    authorize = uow.sent[1]
    assert isinstance(authorize, payment_msgs.AuthorizePayment)
    assert (authorize.amount, authorize.currency) == (1000, "EUR")
    assert authorize.payment_token == "tok_ok"
    assert uow.commits == 1


async def test_stock_that_cannot_be_had_rejects_the_order_naming_the_skus() -> None:
    uow = FakeOrderUnitOfWork(placed())

    await saga.stock_reservation_failed(
        inventory_msgs.StockReservationFailed(order_id="o-1", reason="out_of_stock", skus=["A"]),
        uow,
    )

    order = uow.orders.by_id["o-1"]
    assert (order.status, order.status_reason) == (OrderStatus.REJECTED, "out_of_stock")
    assert uow.sent_types() == ["order.rejected"]


async def test_a_reservation_answered_twice_sends_the_payment_request_once() -> None:
    uow = FakeOrderUnitOfWork(placed())
    await saga.stock_reserved(stock_reserved(), uow)

    await saga.stock_reserved(stock_reserved(), uow)

    assert uow.sent_types() == ["order.awaiting_payment", "payment.authorize_payment"]
    assert uow.commits == 2


async def test_a_reply_about_an_unknown_order_changes_nothing_but_is_committed() -> None:
    uow = FakeOrderUnitOfWork()

    await saga.stock_reserved(stock_reserved("nobody"), uow)

    assert uow.sent == []
    assert uow.commits == 1  # so the inbox remembers the message


async def test_a_declined_payment_releases_the_reservation_then_cancels_the_order() -> None:
    uow = FakeOrderUnitOfWork(awaiting_payment())

    await saga.payment_authorization_failed(
        payment_msgs.PaymentAuthorizationFailed(
            order_id="o-1", payment_id="pay-1", reason="payment_declined"
        ),
        uow,
    )
    assert uow.sent_types() == ["inventory.release_stock"]
    assert uow.orders.by_id["o-1"].status is OrderStatus.CANCELLING

    await saga.stock_released(inventory_msgs.StockReleased(order_id="o-1"), uow)

    order = uow.orders.by_id["o-1"]
    assert (order.status, order.status_reason) == (OrderStatus.CANCELLED, "payment_declined")
    assert uow.sent_types()[-1] == "order.cancelled"


async def test_a_paid_order_asks_shipping_for_a_shipment_with_its_lines_and_address() -> None:
    uow = FakeOrderUnitOfWork(awaiting_payment())

    await saga.payment_authorized(
        payment_msgs.PaymentAuthorized(
            order_id="o-1", payment_id="pay-1", amount=1000, currency="EUR"
        ),
        uow,
    )

    assert uow.sent_types() == ["order.paid", "shipping.create_shipment"]
    create = uow.sent[1]
    assert isinstance(create, shipping_msgs.CreateShipment)
    assert [(line.sku, line.quantity) for line in create.lines] == [("A", 2)]
    assert create.shipping_address.city == "Berlin"


async def test_a_dispatched_parcel_ships_the_order_and_asks_for_the_stock_and_the_money() -> None:
    order = paid()
    order.record_shipment_created("ship-1")
    order.events.clear()
    uow = FakeOrderUnitOfWork(order)

    await saga.shipment_dispatched(
        shipping_msgs.ShipmentDispatched(
            order_id="o-1", shipment_id="ship-1", carrier="simpost", tracking_number="SIM1"
        ),
        uow,
    )

    assert uow.orders.by_id["o-1"].status is OrderStatus.SHIPPED
    assert uow.sent_types() == [
        "inventory.commit_stock",
        "payment.capture_payment",
        "order.shipped",
    ]


async def test_a_refund_of_a_lost_parcels_money_finishes_its_cancellation() -> None:
    order = shipped()
    order.record_stock_committed()
    order.record_payment_captured(1000)
    order.events.clear()
    uow = FakeOrderUnitOfWork(order)
    await saga.shipment_failed(
        shipping_msgs.ShipmentFailed(order_id="o-1", shipment_id="ship-1", reason="lost"), uow
    )
    assert uow.sent_types() == ["payment.void_payment"]

    await saga.payment_refunded(
        payment_msgs.PaymentRefunded(
            order_id="o-1",
            payment_id="pay-1",
            refund_id="pay-1-r1",
            amount=1000,
            refunded_total=1000,
            currency="EUR",
        ),
        uow,
    )

    order = uow.orders.by_id["o-1"]
    assert (order.status, order.status_reason) == (OrderStatus.CANCELLED, "lost")
    assert uow.sent_types()[-1] == "order.cancelled"


async def test_a_staff_refund_of_a_completed_order_leaves_it_completed() -> None:
    order = shipped()
    order.record_stock_committed()
    order.record_payment_captured(1000)
    order.record_delivery("ship-1", "simpost", "SIM1")
    order.events.clear()
    uow = FakeOrderUnitOfWork(order)

    await saga.payment_refunded(
        payment_msgs.PaymentRefunded(
            order_id="o-1",
            payment_id="pay-1",
            refund_id="r-1",
            amount=300,
            refunded_total=300,
            currency="EUR",
        ),
        uow,
    )

    assert uow.orders.by_id["o-1"].status is OrderStatus.COMPLETED
    assert uow.sent == []


async def test_placing_an_order_stores_it_and_asks_inventory_to_reserve_its_lines() -> None:
    uow = FakeOrderUnitOfWork()
    command = use_cases.PlaceOrder("alice", [("A", 1), ("B", 2), ("A", 1)], HOME, "tok_ok")

    order, replayed = await use_cases.place_order(command, uow)

    assert not replayed
    assert uow.orders.by_id[order.id] is order
    assert uow.sent_types() == ["order.created", "inventory.reserve_stock"]
    reserve = uow.sent[1]
    assert isinstance(reserve, inventory_msgs.ReserveStock)
    assert [(line.sku, line.quantity) for line in reserve.lines] == [("A", 2), ("B", 2)]


async def test_the_same_request_placed_twice_answers_with_the_first_order_and_starts_nothing() -> (
    None
):
    uow = FakeOrderUnitOfWork()
    command = use_cases.PlaceOrder("alice", [("A", 1)], HOME, "tok_ok")
    request = use_cases.IdempotentRequest("alice", "POST /orders", "key-1", "hash-1")
    first, _ = await use_cases.place_order(command, uow, request)

    again, replayed = await use_cases.place_order(command, uow, request)

    assert replayed and again is first
    assert uow.sent_types() == ["order.created", "inventory.reserve_stock"]


async def test_cancelling_a_paid_order_stops_the_shipment_before_returning_anything() -> None:
    uow = FakeOrderUnitOfWork(paid())

    answered = await use_cases.cancel_order("o-1", uow, customer_id="alice")

    assert answered.resource.status is OrderStatus.CANCELLING
    assert uow.sent_types() == ["shipping.cancel_shipment"]


async def test_the_sweeper_cancels_an_order_whose_reservation_is_overdue() -> None:
    order = placed()
    order.deadline_at = datetime.now(UTC) - timedelta(seconds=1)
    uow = FakeOrderUnitOfWork(order)

    swept = await deadlines.sweep_overdue(uow)

    assert swept == 1
    assert (order.status, order.status_reason) == (OrderStatus.CANCELLING, "reservation_timeout")
    assert uow.sent_types() == ["inventory.release_stock"]


async def test_every_step_goes_into_the_history_with_what_it_answered_and_sent() -> None:
    uow = FakeOrderUnitOfWork(placed())

    await saga.stock_reserved(stock_reserved(), uow)

    [entry] = uow.orders.history
    assert (entry["step"], entry["status"]) == ("order_awaiting_payment", "awaiting_payment")
    assert entry["detail"]["sent"] == ["order.awaiting_payment", "payment.authorize_payment"]
    assert (entry["detail"]["total"], entry["detail"]["currency"]) == (1000, "EUR")
