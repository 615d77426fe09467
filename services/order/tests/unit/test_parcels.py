"""An order shipped in several parcels, one per stock location (pure domain)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from oms_contracts import inventory, payment, shipping
from oms_order.domain import events
from oms_order.domain.errors import OrderNotModifiable
from oms_order.domain.fulfillment import ParcelStatus, fulfillment_id
from oms_order.domain.model import (
    Address,
    Allocated,
    Compensation,
    Order,
    OrderLine,
    OrderStatus,
)
from oms_order.handlers.outgoing import messages_for

HOME = Address("Ada", "1 Main St", "Berlin", "10115", "DE")
PRICES = {"MUG": 500, "TEA": 300}
BERLIN = Allocated("BER", (("MUG", 2),), ("DE", "AT"))
PARIS = Allocated("PAR", (("TEA", 1),), None)
F_BER = fulfillment_id("o-1", "BER")
F_PAR = fulfillment_id("o-1", "PAR")


def kinds(order: Order) -> list[type]:
    return [type(event) for event in order.events]


def reserved(*allocations: Allocated) -> Order:
    order = Order.place(
        order_id="o-1",
        customer_id="alice",
        lines=[OrderLine("MUG", 2), OrderLine("TEA", 1)],
        shipping_address=HOME,
        payment_token="tok_ok",
        now=datetime(2026, 11, 30, tzinfo=UTC),
    )
    order.record_stock_reserved(PRICES, "EUR", list(allocations) or [BERLIN, PARIS])
    return order


def fulfilling() -> Order:
    order = reserved()
    order.record_payment_authorized("pay-1")
    order.record_shipment_created("s-ber", F_BER)
    order.record_shipment_created("s-par", F_PAR)
    order.events.clear()
    return order


def half_shipped() -> Order:
    order = fulfilling()
    order.record_shipment_dispatched("s-ber", "simpost", "SIM-BER", F_BER)
    order.events.clear()
    return order


def shipped_and_paid() -> Order:
    """Both parcels left, their stock committed and their money captured."""
    order = half_shipped()
    order.record_shipment_dispatched("s-par", "simpost", "SIM-PAR", F_PAR)
    order.record_stock_committed(F_BER)
    order.record_stock_committed(F_PAR)
    order.record_payment_captured(1000, F_BER)
    order.record_payment_captured(300, F_PAR)
    order.events.clear()
    return order


def test_each_allocated_location_becomes_a_parcel_with_its_lines() -> None:
    order = reserved()

    assert [(p.location, p.lines, p.status) for p in order.fulfillments] == [
        ("BER", [("MUG", 2)], ParcelStatus.PENDING),
        ("PAR", [("TEA", 1)], ParcelStatus.PENDING),
    ]
    assert order.total == 1300


def test_an_inventory_that_names_no_location_means_one_parcel_from_the_default_one() -> None:
    order = Order.place(
        order_id="o-1",
        customer_id="alice",
        lines=[OrderLine("MUG", 2)],
        shipping_address=HOME,
        payment_token="tok_ok",
        now=datetime(2026, 11, 30, tzinfo=UTC),
    )
    order.record_stock_reserved(PRICES, "EUR")

    (parcel,) = order.fulfillments
    assert (parcel.id, parcel.location, parcel.lines) == ("o-1", "default", [("MUG", 2)])


def test_a_paid_order_asks_for_one_dispatch_note_per_parcel() -> None:
    order = reserved()
    order.record_payment_authorized("pay-1")

    creates = [
        message
        for message in messages_for(order.events[-1], order)
        if isinstance(message, shipping.CreateShipment)
    ]

    assert [
        (c.fulfillment_id, c.location, [(line.sku, line.quantity) for line in c.lines])
        for c in creates
    ] == [
        (F_BER, "BER", [("MUG", 2)]),
        (F_PAR, "PAR", [("TEA", 1)]),
    ]


def test_the_order_is_fulfilling_once_every_parcel_has_its_dispatch_note() -> None:
    order = reserved()
    order.record_payment_authorized("pay-1")

    order.record_shipment_created("s-ber", F_BER)
    assert order.status is OrderStatus.PAID
    order.record_shipment_created("s-par", F_PAR)
    assert order.status is OrderStatus.FULFILLING


def test_the_first_parcel_out_makes_the_order_partially_shipped_and_settles_that_parcel() -> None:
    order = fulfilling()

    order.record_shipment_dispatched("s-ber", "simpost", "SIM-BER", F_BER)

    assert order.status is OrderStatus.PARTIALLY_SHIPPED
    assert order.tracking_number == "SIM-BER"
    dispatched = order.events[0]
    assert dispatched == events.ParcelDispatched("o-1", F_BER, "BER", 1000, "simpost", "SIM-BER")
    commit, capture = messages_for(dispatched, order)
    assert isinstance(commit, inventory.CommitStock) and commit.location == "BER"
    assert isinstance(capture, payment.CapturePayment) and capture.amount == 1000
    assert kinds(order)[-1] is events.OrderPartiallyShipped


def test_the_last_parcel_out_ships_the_order_and_it_completes_once_all_are_settled_and_home() -> (
    None
):
    order = half_shipped()
    order.record_shipment_dispatched("s-par", "simpost", "SIM-PAR", F_PAR)
    assert order.status is OrderStatus.SHIPPED

    order.record_stock_committed(F_BER)
    order.record_payment_captured(1000, F_BER)
    order.record_delivery("s-ber", "simpost", "SIM-BER", F_BER)
    order.record_delivery("s-par", "simpost", "SIM-PAR", F_PAR)
    order.record_stock_committed(F_PAR)
    assert order.status is OrderStatus.SHIPPED  # the second parcel is not paid for yet
    order.record_payment_captured(300, F_PAR)

    assert order.status is OrderStatus.COMPLETED
    assert order.captured_amount == 1300


def test_cancelling_after_a_parcel_left_stops_the_others_and_keeps_what_shipped() -> None:
    order = half_shipped()

    order.cancel()
    assert order.status is OrderStatus.CANCELLING
    assert order.events[-1] == events.CompensationRequested(
        "o-1", "customer_request", cancel_shipment=True, cancel_parcels=(F_PAR,), keep_amount=1000
    )
    order.record_shipment_cancelled(F_PAR)
    # The money beyond the parcel that left goes back at once; the stock waits until
    # the parcel that left is off the books, so the release cannot take it back.
    assert order.pending_compensations == {Compensation.VOID_PAYMENT}
    assert order.events[-1] == events.CompensationRequested(
        "o-1", "customer_request", void_payment=True, keep_amount=1000
    )
    order.record_payment_voided()
    assert order.status is OrderStatus.CANCELLING
    order.record_stock_committed(F_BER)
    assert order.pending_compensations == {Compensation.RELEASE_STOCK}
    order.record_stock_released()

    assert order.status is OrderStatus.SHIPPED
    assert order.status_detail["cancelled_lines"] == [{"sku": "TEA", "quantity": 1}]
    assert events.OrderPartiallyCancelled("o-1", "customer_request", (("TEA", 1),)) in order.events
    order.record_payment_captured(1000, F_BER)
    order.record_delivery("s-ber", "simpost", "SIM-BER", F_BER)
    assert order.status is OrderStatus.COMPLETED


def test_a_cancellation_every_parcel_outruns_is_abandoned() -> None:
    order = half_shipped()
    order.cancel()

    order.record_shipment_dispatched("s-par", "simpost", "SIM-PAR", F_PAR)

    assert order.status is OrderStatus.SHIPPED
    assert order.pending_compensations == set() and order.deferred_compensations == set()
    assert events.CancellationAbandoned in kinds(order)


def test_a_cancellation_before_any_parcel_left_cancels_the_order_as_before() -> None:
    order = fulfilling()
    order.cancel()
    order.record_shipment_cancelled(F_BER)
    order.record_shipment_cancelled(F_PAR)
    assert order.events[-1] == events.CompensationRequested(
        "o-1", "customer_request", release_stock=True, void_payment=True
    )
    order.record_payment_voided()
    order.record_stock_released()

    assert order.status is OrderStatus.CANCELLED


def test_a_parcel_still_in_its_warehouse_past_the_dispatch_deadline_is_stopped() -> None:
    order = half_shipped()

    order.deadline_passed(max_attempts=5)

    assert order.status is OrderStatus.CANCELLING
    assert order.cancellation_reason == "dispatch_timeout"
    assert [p.id for p in order.fulfillments if p.cancel_requested] == [F_PAR]


def test_a_parcel_lost_on_the_way_gets_its_money_back_while_the_other_goes_on() -> None:
    order = shipped_and_paid()

    order.record_shipment_failed("lost", F_PAR)

    assert order.events[-1] == events.CompensationRequested(
        "o-1", "lost", void_payment=True, keep_amount=1000
    )
    order.record_payment_refunded(300)
    assert order.status is OrderStatus.SHIPPED
    order.record_delivery("s-ber", "simpost", "SIM-BER", F_BER)
    assert order.status is OrderStatus.COMPLETED


def test_a_second_parcel_lost_while_the_first_is_refunded_is_refunded_too() -> None:
    order = shipped_and_paid()
    order.record_shipment_failed("lost", F_PAR)
    order.events.clear()

    order.record_shipment_failed("lost", F_BER)

    # Asked again, keeping nothing: the payment refunds what it has not yet.
    assert order.events == [
        events.CompensationRequested("o-1", "lost", void_payment=True, keep_amount=0)
    ]
    assert [p.status for p in order.fulfillments] == [ParcelStatus.FAILED] * 2
    order.record_payment_refunded(300)
    order.record_payment_refunded(1000)
    assert order.status is OrderStatus.CANCELLED
    assert order.status_reason == "lost"


def test_an_address_the_stock_locations_cannot_ship_to_is_refused() -> None:
    order = fulfilling()

    with pytest.raises(OrderNotModifiable, match="BER"):
        order.change_address(Address("Ada", "1 Rue", "Paris", "75001", "FR"))
    order.change_address(Address("Ada", "1 Gasse", "Wien", "1010", "AT"))
    assert order.pending_address is not None


def test_the_country_cannot_change_while_stock_is_being_allocated() -> None:
    order = Order.place(
        order_id="o-1",
        customer_id="alice",
        lines=[OrderLine("MUG", 2)],
        shipping_address=HOME,
        payment_token="tok_ok",
        now=datetime(2026, 11, 30, tzinfo=UTC),
    )

    with pytest.raises(OrderNotModifiable):
        order.change_address(Address("Ada", "1 Rue", "Paris", "75001", "FR"))
    order.change_address(Address("Ada", "9 Work Rd", "Hamburg", "20095", "DE"))
    assert order.shipping_address.city == "Hamburg"


def test_new_items_are_allocated_afresh_and_the_dispatch_notes_follow() -> None:
    order = fulfilling()
    order.amend_items([OrderLine("MUG", 2), OrderLine("TEA", 3)])
    order.record_shipment_held()
    # Paris cannot send three teas; Lyon can, so Paris' parcel goes.
    lyon = Allocated("LYS", (("TEA", 3),), None)
    order.record_reservation_adjusted(PRICES, [BERLIN, lyon])
    order.record_reauthorized()
    update = order.events[-1]
    assert isinstance(update, events.AmendmentShipmentUpdateRequested)
    f_lys = fulfillment_id("o-1", "LYS")
    assert [(fid, location) for fid, location, _ in update.parcels] == [
        (F_BER, "BER"),
        (f_lys, "LYS"),
    ]
    order.record_shipment_created("s-lys", f_lys)  # may come before the update's answer

    order.record_shipment_updated()

    assert [(p.location, p.shipment_id) for p in order.fulfillments] == [
        ("BER", "s-ber"),
        ("LYS", "s-lys"),
    ]
    assert order.total == 1900


def test_replies_that_name_no_parcel_apply_to_the_only_one() -> None:
    order = Order.place(
        order_id="o-1",
        customer_id="alice",
        lines=[OrderLine("MUG", 2)],
        shipping_address=HOME,
        payment_token="tok_ok",
        now=datetime(2026, 11, 30, tzinfo=UTC),
    )
    order.record_stock_reserved(PRICES, "EUR")
    order.record_payment_authorized("pay-1")
    order.record_shipment_created("s-1")
    order.record_shipment_dispatched("s-1", "simpost", "SIM1")
    order.record_stock_committed()
    order.record_payment_captured(1000)
    order.record_delivery("s-1", "simpost", "SIM1")

    assert order.status is OrderStatus.COMPLETED
