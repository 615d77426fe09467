"""What a customer may change after checkout: the address, the items; and deletion."""

from __future__ import annotations

import pytest

from oms_order.domain import events
from oms_order.domain.errors import OrderNotDeletable, OrderNotModifiable
from oms_order.domain.model import (
    ERASED_ADDRESS,
    Address,
    AmendmentStep,
    Order,
    OrderLine,
    OrderStatus,
)

from .orders import HOME, fulfilling, placed

OFFICE = Address("Ada", "9 Work Rd", "Hamburg", "20095", "DE")


def kinds(order: Order) -> list[type]:
    return [type(event) for event in order.events]


# -- address -------------------------------------------------------------------------


def test_before_a_shipment_is_asked_for_the_address_changes_at_once() -> None:
    order = placed()
    order.change_address(OFFICE)
    assert order.shipping_address == OFFICE
    assert kinds(order) == [events.ShippingAddressChanged]


def test_once_a_dispatch_note_exists_shipping_must_agree_to_a_new_address() -> None:
    order = fulfilling()
    order.change_address(OFFICE)
    assert (order.shipping_address, order.pending_address) == (HOME, OFFICE)
    assert kinds(order) == [events.ShippingAddressChangeRequested]
    order.record_address_changed(OFFICE)
    assert (order.shipping_address, order.pending_address) == (OFFICE, None)


def test_a_refused_address_change_keeps_the_old_address() -> None:
    order = fulfilling()
    order.change_address(OFFICE)
    order.record_address_change_refused("already_dispatched")
    assert (order.shipping_address, order.pending_address) == (HOME, None)


def test_a_shipped_order_keeps_its_address() -> None:
    order = fulfilling()
    order.record_shipment_dispatched("ship-1", "simpost", "SIM1")
    with pytest.raises(OrderNotModifiable):
        order.change_address(OFFICE)


# -- items -----------------------------------------------------------------------------


def test_new_items_go_through_hold_reserve_authorize_and_update() -> None:
    order = fulfilling()
    order.amend_items([OrderLine("A", 3), OrderLine("B", 1)])
    assert order.amendment is not None and order.amendment.step is AmendmentStep.HOLDING
    assert order.status_detail["item_change"] == {"status": "in_progress"}
    order.record_shipment_held()
    assert order.amendment.step is AmendmentStep.RESERVING
    order.record_reservation_adjusted({"A": 500, "B": 200})
    assert order.total == 1700
    assert order.amendment.step is AmendmentStep.AUTHORIZING
    assert order.events[-1] == events.AmendmentPaymentRequested("o-1", 1700)
    order.record_reauthorized()
    assert order.events[-1] == events.AmendmentShipmentUpdateRequested(
        "o-1", (("A", 3), ("B", 1)), (("o-1", "default", (("A", 3), ("B", 1))),)
    )
    order.record_shipment_updated()
    assert order.amendment is None
    assert order.status is OrderStatus.FULFILLING
    assert order.status_detail["item_change"] == {"status": "applied"}
    assert order.events[-1] == events.OrderAmended("o-1", 1700)


def test_an_unchanged_total_skips_the_payment_step() -> None:
    order = fulfilling()
    order.amend_items([OrderLine("B", 5)])
    order.record_shipment_held()
    order.record_reservation_adjusted({"B": 200})  # 5 x 200 = 1000, as before
    assert order.amendment is not None and order.amendment.step is AmendmentStep.UPDATING


def test_items_that_are_out_of_stock_leave_the_order_as_it_was() -> None:
    order = fulfilling()
    order.amend_items([OrderLine("A", 9)])
    order.record_shipment_held()
    order.record_reservation_adjustment_failed("out_of_stock", ["A"])
    assert order.events[-1] == events.AmendmentShipmentReleaseRequested("o-1")
    order.record_shipment_released()
    assert order.amendment is None
    assert [(line.sku, line.quantity) for line in order.lines] == [("A", 2)]
    assert order.status_detail["item_change"] == {
        "status": "rejected",
        "reason": "out_of_stock",
        "skus": ["A"],
    }


def test_a_refused_new_total_puts_the_old_items_back_and_releases_the_parcel() -> None:
    order = fulfilling()
    order.amend_items([OrderLine("A", 3)])
    order.record_shipment_held()
    order.record_reservation_adjusted({"A": 500})
    order.record_reauthorization_failed("payment_declined")
    assert order.events[-1] == events.AmendmentStockRevertRequested("o-1", (("A", 2),), "DE")
    order.record_reservation_adjusted({"A": 500})
    assert [(line.sku, line.quantity) for line in order.lines] == [("A", 2)]
    order.record_shipment_released()
    assert order.total == 1000
    assert order.status_detail["item_change"]["reason"] == "payment_declined"


def test_a_parcel_that_already_left_refuses_new_items() -> None:
    order = fulfilling()
    order.amend_items([OrderLine("A", 3)])
    order.record_shipment_hold_refused("already_dispatched")
    assert order.amendment is None
    assert order.status_detail["item_change"]["reason"] == "already_dispatched"


@pytest.mark.parametrize(
    "status",
    [OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT, OrderStatus.SHIPPED, OrderStatus.CANCELLED],
)
def test_items_change_only_while_paid_and_not_shipped(status: OrderStatus) -> None:
    order = fulfilling()
    order.status = status
    with pytest.raises(OrderNotModifiable):
        order.amend_items([OrderLine("A", 3)])


def test_one_change_of_items_at_a_time() -> None:
    order = fulfilling()
    order.amend_items([OrderLine("A", 3)])
    with pytest.raises(OrderNotModifiable):
        order.amend_items([OrderLine("A", 4)])


def test_cancelling_during_a_change_of_items_undoes_everything() -> None:
    order = fulfilling()
    order.amend_items([OrderLine("A", 3)])
    order.record_shipment_held()
    order.cancel()
    assert order.amendment is None
    assert order.status is OrderStatus.CANCELLING
    order.record_reservation_adjusted({"A": 500})  # a late reply of the abandoned change
    assert order.events[-1] == events.ReplyIgnored("o-1", "inventory.reservation_adjusted")


# -- deletion ----------------------------------------------------------------------------


def test_a_finished_order_can_be_deleted_which_erases_the_address() -> None:
    order = placed()
    order.record_stock_unavailable("out_of_stock", ["A"])
    order.delete()
    assert order.deleted
    assert order.shipping_address == ERASED_ADDRESS
    assert order.payment_token == ""
    assert order.events[-1] == events.OrderDeleted("o-1")


def test_an_unfinished_order_cannot_be_deleted() -> None:
    with pytest.raises(OrderNotDeletable):
        fulfilling().delete()
