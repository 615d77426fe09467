"""A new address for an order's parcels: taken by every parcel while they are all in
the warehouse, refused for all (with the reason the order service shows) once one
of them left."""

from __future__ import annotations

from oms_shipping.domain.model import AddressChanged, AddressChangeRefused

from .parcels import HOME, OFFICE, announced, dispatch, order_with, parcel, settle


def test_parcels_still_in_the_warehouse_all_go_to_the_new_address() -> None:
    order = order_with(("f-north", "north", {"MUG": 2}), ("f-south", "south", {"TEA": 1}))

    order.change_address(OFFICE)

    assert [p.address for p in order.parcels] == [OFFICE, OFFICE]
    assert announced(order) == [AddressChanged("s-1", "o-1", OFFICE)]


def test_once_one_parcel_left_no_parcel_changes_address_and_the_reason_says_it_left() -> None:
    order = order_with(("f-north", "north", {"MUG": 2}), ("f-south", "south", {"TEA": 1}))
    dispatch(order, "f-south")

    order.change_address(OFFICE)

    assert [p.address for p in order.parcels] == [HOME, HOME]
    assert announced(order) == [AddressChangeRefused("s-1", "o-1", "already_dispatched")]


def test_a_cancelled_parcel_keeps_its_address_and_does_not_refuse_the_change() -> None:
    order = order_with(("f-north", "north", {"MUG": 2}), ("f-south", "south", {"TEA": 1}))
    order.cancel("f-north")
    settle(order)

    order.change_address(OFFICE)

    assert (parcel(order, "f-north").address, parcel(order, "f-south").address) == (HOME, OFFICE)
    assert announced(order) == [AddressChanged("s-2", "o-1", OFFICE)]


def test_an_order_whose_parcels_were_all_cancelled_refuses_a_new_address_naming_its_state() -> None:
    order = order_with(("o-1", "default", {"MUG": 2}))
    order.cancel(None)
    settle(order)

    order.change_address(OFFICE)

    assert announced(order) == [AddressChangeRefused("s-1", "o-1", "shipment_cancelled")]
