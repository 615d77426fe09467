"""A new address for a parcel: taken while it is in the warehouse, refused (with the
reason the order service shows) once it left."""

from __future__ import annotations

from datetime import UTC, datetime

from oms_shipping.domain.model import (
    Address,
    AddressChanged,
    AddressChangeRefused,
    Line,
    Shipment,
)

HOME = Address(name="Ada", line1="1 Main St", city="Berlin", postal_code="10115", country="DE")
OFFICE = Address(name="Ada", line1="9 Work Rd", city="Hamburg", postal_code="20095", country="DE")


def new_shipment() -> Shipment:
    shipment = Shipment.create(
        shipment_id="shp-1", order_id="order-1", lines=[Line("MUG", 2)], address=HOME
    )
    shipment.events.clear()
    return shipment


def test_a_parcel_still_in_the_warehouse_goes_to_the_new_address() -> None:
    shipment = new_shipment()

    shipment.change_address(OFFICE)

    assert shipment.address == OFFICE
    assert shipment.events == [AddressChanged("shp-1", "order-1", OFFICE)]


def test_a_parcel_that_left_keeps_its_address_and_says_it_was_already_dispatched() -> None:
    shipment = new_shipment()
    shipment.dispatch(carrier="DHL", tracking_number="TRK-1", now=datetime.now(UTC))
    shipment.events.clear()

    shipment.change_address(OFFICE)

    assert shipment.address == HOME
    assert shipment.events == [AddressChangeRefused("shp-1", "order-1", "already_dispatched")]


def test_a_cancelled_shipment_refuses_a_new_address_naming_its_state() -> None:
    shipment = new_shipment()
    shipment.cancel()
    shipment.events.clear()

    shipment.change_address(OFFICE)

    assert shipment.events == [AddressChangeRefused("shp-1", "order-1", "shipment_cancelled")]
