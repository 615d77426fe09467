"""The console's rules for parcels, returns and stock locations: which parcels an
order page shows and which it lets staff dispatch, what a partially shipped order
and a partially captured payment allow, who may act on a return in which state,
how the receive form becomes shipping's request, and the location form."""

from __future__ import annotations

from typing import Any

import pytest

from oms_console.domain.actions import order_actions, return_actions
from oms_console.domain.locations import LocationFormError, new_location
from oms_console.domain.parcels import parcels_of
from oms_console.domain.receiving import (
    CountedLine,
    ReceiveFormError,
    announced_lines,
    describe_item_fields,
    received_items,
)
from oms_console.domain.roles import Permission, Role, may

SPLIT_ORDER: dict[str, Any] = {
    "id": "o-1",
    "status": "partially_shipped",
    "fulfillments": [
        {
            "id": "f-ber",
            "location": "BER",
            "items": [{"sku": "MUG", "quantity": 2}],
            "status": "dispatched",
            "shipment_id": "s-ber",
            "tracking_number": "T-1",
        },
        {
            "id": "f-par",
            "location": "PAR",
            "items": [{"sku": "TEA", "quantity": 1}],
            "status": "created",
            "shipment_id": "s-par",
            "tracking_number": None,
        },
    ],
}
SHIPMENTS = [
    {
        "id": "s-par",
        "fulfillment_id": "f-par",
        "location": "PAR",
        "status": "created",
        "lines": [{"sku": "TEA", "quantity": 1}],
        "events": [],
    },
    {
        "id": "s-ber",
        "fulfillment_id": "f-ber",
        "location": "BER",
        "status": "in_transit",
        "carrier": "simpost",
        "tracking_number": "T-1",
        "lines": [{"sku": "MUG", "quantity": 2}],
        "events": [{"status": "in_transit", "occurred_at": "2026-12-01T10:00:00Z"}],
    },
]


def test_an_order_shows_one_parcel_per_fulfillment_in_its_order_with_what_shipping_knows() -> None:
    parcels = parcels_of(SPLIT_ORDER, SHIPMENTS)
    assert [(p.number, p.location, p.items) for p in parcels] == [
        (1, "BER", (("MUG", 2),)),
        (2, "PAR", (("TEA", 1),)),
    ]
    assert parcels[0].status == "in_transit" and parcels[0].carrier == "simpost"
    assert len(parcels[0].events) == 1
    assert parcels[1].status == "created" and parcels[1].tracking_number is None


def test_a_parcel_still_waiting_for_its_dispatch_note_is_shown_from_the_order() -> None:
    order = {
        **SPLIT_ORDER,
        "fulfillments": [{**SPLIT_ORDER["fulfillments"][1], "shipment_id": None}],
    }
    (parcel,) = parcels_of(order, [])
    assert parcel.location == "PAR" and parcel.status == "created" and parcel.shipment_id is None


def test_a_shipment_the_order_does_not_list_yet_is_shown_after_the_others() -> None:
    order = {**SPLIT_ORDER, "fulfillments": SPLIT_ORDER["fulfillments"][:1]}
    parcels = parcels_of(order, SHIPMENTS)
    assert [(p.number, p.location, p.shipment_id) for p in parcels] == [
        (1, "BER", "s-ber"),
        (2, "PAR", "s-par"),
    ]


def test_a_partially_shipped_order_may_be_cancelled_and_its_waiting_parcel_dispatched() -> None:
    actions = order_actions(Role.SUPPORT, SPLIT_ORDER, SHIPMENTS, [])
    assert actions.cancel and not actions.dispatch
    warehouse = order_actions(Role.WAREHOUSE, SPLIT_ORDER, SHIPMENTS, [])
    assert warehouse.dispatch == {"s-par"} and not warehouse.cancel


def test_a_shipped_order_may_no_longer_be_cancelled() -> None:
    shipped = {**SPLIT_ORDER, "status": "shipped"}
    assert not order_actions(Role.ADMIN, shipped, [], []).cancel


def test_money_captured_for_the_first_parcel_may_be_refunded_before_the_rest_is() -> None:
    partial = {
        "id": "p-1",
        "status": "partially_captured",
        "captured_amount": 2000,
        "refunded_amount": 0,
    }
    assert order_actions(Role.ADMIN, SPLIT_ORDER, [], [partial]).refund == {"p-1"}
    assert not order_actions(Role.SUPPORT, SPLIT_ORDER, [], [partial]).refund
    nothing_yet = {**partial, "captured_amount": 0}
    assert not order_actions(Role.ADMIN, SPLIT_ORDER, [], [nothing_yet]).refund


REQUESTED = {"id": "r-1", "status": "requested", "return_tracking_number": None}
LABELLED = {"id": "r-1", "status": "approved", "return_tracking_number": "RT-1"}
STUCK = {"id": "r-1", "status": "requires_attention", "return_tracking_number": "RT-1"}


def test_support_may_approve_or_reject_a_requested_return_but_not_retry_or_force_one() -> None:
    support = return_actions(Role.SUPPORT, REQUESTED)
    assert support.approve and support.reject and not support.receive
    stuck = return_actions(Role.SUPPORT, STUCK)
    assert not stuck.retry and not stuck.force and not stuck.any


def test_only_a_requested_return_may_be_approved_or_rejected() -> None:
    for found in (LABELLED, STUCK, {"id": "r-1", "status": "refunded"}):
        actions = return_actions(Role.ADMIN, found)
        assert not actions.approve and not actions.reject


def test_a_return_refund_that_needs_attention_offers_retry_and_force_to_admin() -> None:
    actions = return_actions(Role.ADMIN, STUCK)
    assert actions.retry and actions.force and not actions.receive


def test_the_warehouse_receives_a_return_once_its_label_is_out_and_never_reviews_one() -> None:
    assert return_actions(Role.WAREHOUSE, LABELLED).receive
    assert not return_actions(Role.WAREHOUSE, {**LABELLED, "return_tracking_number": None}).receive
    assert not return_actions(Role.SUPPORT, LABELLED).receive
    assert not return_actions(Role.WAREHOUSE, REQUESTED).any
    assert not may(Role.WAREHOUSE, Permission.REVIEW_RETURNS)


def test_only_admin_adds_stock_locations() -> None:
    assert may(Role.ADMIN, Permission.MANAGE_LOCATIONS)
    assert not may(Role.WAREHOUSE, Permission.MANAGE_LOCATIONS)
    assert not may(Role.SUPPORT, Permission.MANAGE_LOCATIONS)


# -- the receive form ----------------------------------------------------------


def test_a_sku_announced_from_two_locations_is_counted_once() -> None:
    lines = announced_lines(
        [
            {"sku": "MUG", "quantity": 1, "location": "BER"},
            {"sku": "TEA", "quantity": 2, "location": "BER"},
            {"sku": "MUG", "quantity": 2, "location": "PAR"},
        ]
    )
    assert [(line.sku, line.quantity, line.locations) for line in lines] == [
        ("MUG", 3, ("BER", "PAR")),
        ("TEA", 2, ("BER",)),
    ]


def test_one_sku_may_arrive_partly_resellable_and_partly_damaged() -> None:
    items = received_items([CountedLine("MUG", 2, "1", "1"), CountedLine("TEA", 1, "1", "")])
    assert items == [
        {"sku": "MUG", "quantity": 1, "condition": "resellable"},
        {"sku": "MUG", "quantity": 1, "condition": "damaged"},
        {"sku": "TEA", "quantity": 1, "condition": "resellable"},
    ]


def test_less_than_announced_may_arrive_and_a_line_that_did_not_is_left_out() -> None:
    items = received_items([CountedLine("MUG", 3, "1", "0"), CountedLine("TEA", 2, "0", "0")])
    assert items == [{"sku": "MUG", "quantity": 1, "condition": "resellable"}]


@pytest.mark.parametrize(
    ("resellable", "damaged", "message"),
    [
        ("two", "0", "MUG, resellable: give a whole number from 0 to 2"),
        ("-1", "0", "MUG, resellable: give a whole number from 0 to 2"),
        ("1.5", "0", "MUG, resellable: give a whole number from 0 to 2"),
        ("0", "3", "MUG, damaged: give a whole number from 0 to 2"),
        ("2", "1", "MUG: 3 units counted, but the return announced 2"),
        ("0", "0", "Count at least one unit"),
    ],
)
def test_a_count_that_cannot_be_received_is_refused_naming_the_line(
    resellable: str, damaged: str, message: str
) -> None:
    with pytest.raises(ReceiveFormError, match=message):
        received_items([CountedLine("MUG", 2, resellable, damaged)])


def test_shippings_refusal_of_an_entry_is_told_by_sku_and_condition() -> None:
    items = [
        {"sku": "MUG", "quantity": 1, "condition": "resellable"},
        {"sku": "MUG", "quantity": 1, "condition": "damaged"},
    ]
    text = describe_item_fields(items, [("items[1].quantity", "more than announced")])
    assert text == "MUG (damaged), quantity: more than announced"
    assert describe_item_fields(items, [("items", "too many")]) == "items: too many"
    assert describe_item_fields(items, []) is None


# -- the location form ---------------------------------------------------------


def test_a_location_is_sent_as_typed_with_its_countries_tidied() -> None:
    assert new_location(" BER-1 ", "Berlin", "de", "10", "de, at;CH  at") == {
        "code": "BER-1",
        "name": "Berlin",
        "country": "DE",
        "priority": 10,
        "serves": ["AT", "CH", "DE"],
    }


def test_a_location_without_priority_or_countries_leaves_them_to_inventory() -> None:
    assert new_location("PAR", "Paris", "FR", "", "") == {
        "code": "PAR",
        "name": "Paris",
        "country": "FR",
    }


@pytest.mark.parametrize(
    ("form", "field"),
    [
        (("", "Berlin", "DE", "", ""), "Code"),
        (("BER 1", "Berlin", "DE", "", ""), "Code"),
        (("BER", "  ", "DE", "", ""), "Name"),
        (("BER", "Berlin", "Germany", "", ""), "Country"),
        (("BER", "Berlin", "DE", "first", ""), "Priority"),
        (("BER", "Berlin", "DE", "-1", ""), "Priority"),
        (("BER", "Berlin", "DE", "", "DE, Austria"), "Ships to: Austria"),
    ],
)
def test_a_location_form_that_is_plainly_wrong_names_the_field(
    form: tuple[str, str, str, str, str], field: str
) -> None:
    with pytest.raises(LocationFormError, match=f"^{field}"):
        new_location(*form)
