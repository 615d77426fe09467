"""The order aggregate drives the saga: each reply moves it one step, and records
what must happen next (an event the edge turns into commands)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from oms_order.domain import events
from oms_order.domain.errors import InvalidOrder, OrderNotCancellable
from oms_order.domain.model import Address, Compensation, Order, OrderLine, OrderStatus

ADDRESS = Address(name="Ada", line1="1 Main St", city="Berlin", postal_code="10115", country="DE")


def place(*lines: tuple[str, int]) -> Order:
    order = Order.place(
        order_id="o-1",
        customer_id="alice",
        lines=[OrderLine(sku, qty) for sku, qty in (lines or (("A", 2), ("B", 1)))],
        shipping_address=ADDRESS,
        payment_token="tok_ok",
        now=datetime(2026, 11, 25, tzinfo=UTC),
    )
    order.events.clear()
    return order


def paid_order() -> Order:
    order = place()
    order.record_stock_reserved({"A": 500, "B": 250}, "EUR")
    order.record_payment_authorized("pay-1")
    order.events.clear()
    return order


def recorded(order: Order) -> list[type[events.OrderEvent]]:
    return [type(event) for event in order.events]


def test_a_placed_order_is_pending_and_asks_for_stock() -> None:
    order = Order.place(
        order_id="o-1",
        customer_id="alice",
        lines=[OrderLine("A", 1)],
        shipping_address=ADDRESS,
        payment_token="tok_ok",
        now=datetime(2026, 11, 25, tzinfo=UTC),
    )
    assert order.status is OrderStatus.PENDING
    assert recorded(order) == [events.OrderPlaced]
    assert order.total is None


def test_lines_for_the_same_sku_are_merged() -> None:
    order = place(("A", 2), ("B", 1), ("A", 3))
    assert [(line.sku, line.quantity) for line in order.lines] == [("A", 5), ("B", 1)]


@pytest.mark.parametrize("lines", [[], [OrderLine("A", 0)], [OrderLine("A", -1)]])
def test_an_order_without_lines_or_with_a_non_positive_quantity_is_refused(
    lines: list[OrderLine],
) -> None:
    with pytest.raises(InvalidOrder):
        Order.place(
            order_id="o",
            customer_id="c",
            lines=lines,
            shipping_address=ADDRESS,
            payment_token="t",
            now=datetime.now(UTC),
        )


def test_reserved_stock_prices_the_order_and_asks_for_payment() -> None:
    order = place()
    order.record_stock_reserved({"A": 500, "B": 250}, "EUR")
    assert order.status is OrderStatus.AWAITING_PAYMENT
    assert order.total == 2 * 500 + 250
    assert order.currency == "EUR"
    assert recorded(order) == [events.OrderAwaitingPayment]
    assert order.events[0] == events.OrderAwaitingPayment("o-1", 1250, "EUR")


def test_out_of_stock_rejects_the_order_naming_the_skus() -> None:
    order = place()
    order.record_stock_unavailable("out_of_stock", ["B", "A"])
    assert order.status is OrderStatus.REJECTED
    assert order.status_reason == "out_of_stock"
    assert order.status_detail == {"skus": ["A", "B"]}
    assert order.is_terminal


def test_the_happy_path_ends_completed_with_a_tracking_number() -> None:
    order = paid_order()
    assert order.status is OrderStatus.PAID
    order.record_shipment_created("ship-1")
    assert order.status is OrderStatus.FULFILLING
    order.record_shipment_dispatched("ship-1", "simpost", "SIM1")
    assert order.status is OrderStatus.SHIPPED
    assert order.tracking_number == "SIM1"
    order.record_stock_committed()
    order.record_payment_captured(1250)
    order.record_delivery("ship-1", "simpost", "SIM1")
    assert order.status is OrderStatus.COMPLETED
    assert recorded(order) == [
        events.OrderFulfilling,
        events.ParcelDispatched,
        events.OrderShipped,
        events.StockCommitted,
        events.PaymentCaptured,
        events.OrderCompleted,
    ]


def test_a_dispatch_notice_that_overtakes_the_creation_notice_still_ships_the_order() -> None:
    order = paid_order()
    order.record_shipment_dispatched("ship-1", "simpost", "SIM1")
    order.record_shipment_created("ship-1")
    assert order.status is OrderStatus.SHIPPED
    assert recorded(order) == [events.ParcelDispatched, events.OrderShipped]


def test_a_delivery_notice_before_the_dispatch_notice_ships_and_completes_once_settled() -> None:
    order = paid_order()
    order.record_delivery("ship-1", "simpost", "SIM1")
    assert order.status is OrderStatus.SHIPPED
    assert order.delivered
    order.record_stock_committed()
    order.record_payment_captured(1250)
    assert order.status is OrderStatus.COMPLETED
    assert recorded(order) == [
        events.ParcelDispatched,
        events.OrderShipped,
        events.StockCommitted,
        events.PaymentCaptured,
        events.OrderCompleted,
    ]


def test_a_delivered_order_is_not_completed_while_its_payment_is_uncaptured() -> None:
    order = paid_order()
    order.record_shipment_dispatched("ship-1", "simpost", "SIM1")
    order.record_stock_committed()
    order.record_delivery("ship-1", "simpost", "SIM1")
    assert order.status is OrderStatus.SHIPPED
    order.record_payment_captured(1250)
    assert order.status is OrderStatus.COMPLETED


def test_a_duplicate_reply_changes_nothing() -> None:
    order = place()
    order.record_stock_reserved({"A": 500, "B": 250}, "EUR")
    order.events.clear()
    order.record_stock_reserved({"A": 999, "B": 999}, "EUR")
    assert order.total == 1250
    assert order.status is OrderStatus.AWAITING_PAYMENT
    assert order.events == [events.ReplyIgnored("o-1", "inventory.stock_reserved")]


def test_a_declined_payment_releases_the_stock_before_the_order_is_cancelled() -> None:
    order = place()
    order.record_stock_reserved({"A": 500, "B": 250}, "EUR")
    order.events.clear()
    order.record_payment_failed("pay-1", "payment_declined")
    assert order.status is OrderStatus.CANCELLING
    assert order.pending_compensations == {Compensation.RELEASE_STOCK}
    assert order.events == [events.CompensationRequested("o-1", "payment_declined", True, False)]
    order.record_stock_released()
    assert order.status is OrderStatus.CANCELLED
    assert order.status_reason == "payment_declined"
    assert recorded(order)[-1] is events.OrderCancelled


def test_cancelling_a_paid_order_stops_the_shipment_first_then_voids_and_releases() -> None:
    order = paid_order()
    order.cancel()
    assert order.status is OrderStatus.CANCELLING
    assert order.pending_compensations == {Compensation.CANCEL_SHIPMENT}
    assert order.events == [
        events.CompensationRequested(
            "o-1", "customer_request", cancel_shipment=True, cancel_parcels=("o-1",)
        )
    ]
    order.events.clear()
    order.record_shipment_cancelled()
    assert order.pending_compensations == {Compensation.RELEASE_STOCK, Compensation.VOID_PAYMENT}
    assert order.events[-1] == events.CompensationRequested(
        "o-1", "customer_request", release_stock=True, void_payment=True
    )
    order.record_payment_voided()
    assert order.status is OrderStatus.CANCELLING
    order.record_stock_released()
    assert order.status is OrderStatus.CANCELLED
    assert order.status_reason == "customer_request"


def test_a_cancellation_that_loses_the_race_with_dispatch_is_abandoned_and_the_order_ships() -> (
    None
):
    order = paid_order()
    order.record_shipment_created("ship-1")
    order.cancel()
    order.events.clear()
    order.record_shipment_dispatched("ship-1", "simpost", "SIM1")
    assert order.status is OrderStatus.SHIPPED
    assert order.status_reason is None
    assert order.pending_compensations == set()
    assert order.deferred_compensations == set()
    assert recorded(order) == [
        events.ParcelDispatched,
        events.CancellationAbandoned,
        events.OrderShipped,
    ]


def test_cancelling_while_payment_is_in_flight_also_voids_it() -> None:
    order = place()
    order.record_stock_reserved({"A": 500, "B": 250}, "EUR")
    order.cancel()
    assert order.pending_compensations == {Compensation.RELEASE_STOCK, Compensation.VOID_PAYMENT}
    # The authorization then fails: nothing is held, so nothing is left to void.
    order.record_payment_failed("pay-1", "payment_declined")
    order.record_stock_released()
    assert order.status is OrderStatus.CANCELLED
    assert order.status_reason == "customer_request"


def test_a_late_authorization_after_cancellation_is_voided_and_does_not_revive_the_order() -> None:
    order = place()
    order.record_stock_reserved({"A": 500, "B": 250}, "EUR")
    order.cancel()
    order.record_stock_released()
    order.record_payment_voided()  # the void for a payment not yet authorized
    assert order.status is OrderStatus.CANCELLED
    order.events.clear()
    order.record_payment_authorized("pay-1")
    assert order.status is OrderStatus.CANCELLED
    assert order.events == [events.CompensationRequested("o-1", "customer_request", False, True)]


def test_a_late_reservation_after_cancellation_is_released() -> None:
    order = place()
    order.cancel()
    order.record_stock_released()
    assert order.status is OrderStatus.CANCELLED
    order.events.clear()
    order.record_stock_reserved({"A": 500, "B": 250}, "EUR")
    assert order.status is OrderStatus.CANCELLED
    assert order.events == [events.CompensationRequested("o-1", "customer_request", True, False)]


@pytest.mark.parametrize("status", ["shipped", "completed", "rejected"])
def test_an_order_that_shipped_or_ended_cannot_be_cancelled(status: str) -> None:
    order = paid_order()
    order.status = OrderStatus(status)
    with pytest.raises(OrderNotCancellable):
        order.cancel()


def test_cancelling_twice_is_harmless() -> None:
    order = place()
    order.cancel()
    order.events.clear()
    order.cancel()
    assert order.events == []
    assert order.status is OrderStatus.CANCELLING
