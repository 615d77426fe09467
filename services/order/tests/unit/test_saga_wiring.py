"""Which commands each saga step sends, and to whom (the map in handlers/outgoing)."""

from __future__ import annotations

from datetime import UTC, datetime

from oms_contracts import inventory, order, payment, shipping
from oms_order.domain import events
from oms_order.domain.model import Address, Order, OrderLine
from oms_order.handlers.outgoing import messages_for


def an_order() -> Order:
    placed = Order.place(
        order_id="o-1",
        customer_id="alice",
        lines=[OrderLine("A", 2)],
        shipping_address=Address("Ada", "1 Main St", "Berlin", "10115", "DE"),
        payment_token="tok_ok",
        now=datetime(2026, 11, 25, tzinfo=UTC),
    )
    placed.record_stock_reserved({"A": 500}, "EUR")
    return placed


def kinds(event: events.OrderEvent) -> list[type]:
    return [type(message) for message in messages_for(event, an_order())]


def test_placing_announces_the_order_and_asks_inventory_to_reserve() -> None:
    assert kinds(events.OrderPlaced("o-1", datetime.now(UTC))) == [
        order.OrderCreated,
        inventory.ReserveStock,
    ]


def test_reserved_stock_asks_payment_to_authorize_the_total() -> None:
    messages = messages_for(events.OrderAwaitingPayment("o-1", 1000, "EUR"), an_order())
    command = messages[1]
    assert isinstance(command, payment.AuthorizePayment)
    assert (command.amount, command.currency, command.payment_token) == (1000, "EUR", "tok_ok")


def test_a_paid_order_asks_shipping_for_a_shipment() -> None:
    assert kinds(events.OrderPaid("o-1", "pay-1")) == [order.OrderPaid, shipping.CreateShipment]


def test_a_parcel_that_left_commits_its_stock_and_captures_its_amount() -> None:
    messages = messages_for(
        events.ParcelDispatched("o-1", "f-2", "PAR", 750, "simpost", "SIM1"), an_order()
    )
    commit, capture = messages
    assert isinstance(commit, inventory.CommitStock)
    assert (commit.location, commit.fulfillment_id) == ("PAR", "f-2")
    assert isinstance(capture, payment.CapturePayment)
    assert (capture.amount, capture.fulfillment_id) == (750, "f-2")


def test_shipping_is_announced_without_asking_anything_more() -> None:
    assert kinds(events.OrderShipped("o-1", "simpost", "SIM1")) == [order.OrderShipped]
    assert kinds(events.OrderPartiallyShipped("o-1", "f-2", "PAR", "simpost", "SIM1")) == [
        order.OrderPartiallyShipped
    ]


def test_stopping_parcels_asks_shipping_once_per_parcel_and_payment_to_keep_what_left() -> None:
    messages = messages_for(
        events.CompensationRequested(
            "o-1",
            "customer_request",
            cancel_shipment=True,
            void_payment=True,
            cancel_parcels=("f-1", "f-2"),
            keep_amount=300,
        ),
        an_order(),
    )
    cancels = [m for m in messages if isinstance(m, shipping.CancelShipment)]
    assert [c.fulfillment_id for c in cancels] == ["f-1", "f-2"]
    (void,) = [m for m in messages if isinstance(m, payment.VoidPayment)]
    assert void.keep_amount == 300


def test_compensation_sends_only_the_undo_steps_asked_for() -> None:
    assert kinds(events.CompensationRequested("o-1", "x", True, True)) == [
        payment.VoidPayment,
        inventory.ReleaseStock,
    ]
    assert kinds(events.CompensationRequested("o-1", "x", True, False)) == [
        inventory.ReleaseStock,
    ]


def test_bookkeeping_steps_send_nothing() -> None:
    assert kinds(events.StockCommitted("o-1")) == []
    assert kinds(events.PaymentCaptured("o-1", 1000)) == []
