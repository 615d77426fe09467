"""What an order asks of all its parcels at once: create them one by one, hold them
all or none, give them new lines and parcels, release them, cancel one or all. Each
parcel answers for itself; the order's request is answered once."""

from __future__ import annotations

import pytest

from oms_shipping.domain.model import (
    Cancelled,
    Created,
    Dispatched,
    Held,
    HoldRefused,
    Line,
    NotCreatedYet,
    OrderParcels,
    ParcelPlan,
    Released,
    ShipmentStatus,
    Updated,
)

from .parcels import HOME, announced, counted_ids, dispatch, order_with, parcel, settle


def two_parcels() -> OrderParcels:
    """Order o-1: f-north (s-1) sends 2 MUG from `north`, f-south (s-2) 1 TEA from `south`."""
    return order_with(("f-north", "north", {"MUG": 2}), ("f-south", "south", {"TEA": 1}))


def plan(fulfillment_id: str, location: str, **lines: int) -> ParcelPlan:
    return ParcelPlan(fulfillment_id, location, tuple(Line(s, q) for s, q in lines.items()))


def statuses(order: OrderParcels) -> dict[str, ShipmentStatus]:
    return {p.fulfillment_id: p.status for p in order.parcels}


# -- creating parcels ---------------------------------------------------------------


def test_each_parcel_of_an_order_gets_its_own_shipment_from_its_location() -> None:
    order = OrderParcels("o-1", [], new_id=counted_ids())

    for fulfillment_id, location in (("f-north", "north"), ("f-south", "south")):
        order.ask_for(
            fulfillment_id=fulfillment_id, location=location, lines=[Line("MUG", 1)], address=HOME
        )

    assert [(p.id, p.fulfillment_id, p.location) for p in order.parcels] == [
        ("s-1", "f-north", "north"),
        ("s-2", "f-south", "south"),
    ]
    assert announced(order) == [Created("s-1", "o-1"), Created("s-2", "o-1")]


def test_a_parcel_asked_for_again_is_not_made_twice_and_says_where_it_stands() -> None:
    order = two_parcels()
    dispatch(order, "f-north")

    again = order.ask_for(
        fulfillment_id="f-north", location="north", lines=[Line("MUG", 2)], address=HOME
    )

    assert again is None
    assert len(order.parcels) == 2
    assert announced(order) == [Created("s-1", "o-1"), Dispatched("s-1", "o-1", "simpost", "TRK-1")]


def test_a_parcel_asked_for_while_the_others_are_held_is_held_with_them() -> None:
    order = order_with(("f-north", "north", {"MUG": 2}))
    order.hold()
    settle(order)

    late = order.ask_for(
        fulfillment_id="f-south", location="south", lines=[Line("TEA", 1)], address=HOME
    )

    assert late is not None and late.status is ShipmentStatus.ON_HOLD
    assert announced(order) == [Created("s-2", "o-1")]


# -- cancelling ------------------------------------------------------------------------


def test_cancelling_one_parcel_leaves_the_others_alone() -> None:
    order = two_parcels()

    order.cancel("f-south")

    assert statuses(order) == {"f-north": ShipmentStatus.CREATED, "f-south": "cancelled"}
    assert announced(order) == [Cancelled("s-2", "o-1")]


def test_cancelling_a_parcel_that_left_answers_that_it_left() -> None:
    order = two_parcels()
    dispatch(order, "f-north")

    order.cancel("f-north")

    assert parcel(order, "f-north").status is ShipmentStatus.DISPATCHED
    assert announced(order) == [Created("s-1", "o-1"), Dispatched("s-1", "o-1", "simpost", "TRK-1")]


def test_cancelling_the_whole_order_cancels_what_is_left_and_says_what_already_left() -> None:
    order = two_parcels()
    dispatch(order, "f-north")

    order.cancel(None)

    assert statuses(order) == {"f-north": ShipmentStatus.DISPATCHED, "f-south": "cancelled"}
    assert announced(order) == [
        Created("s-1", "o-1"),
        Dispatched("s-1", "o-1", "simpost", "TRK-1"),
        Cancelled("s-2", "o-1"),
    ]


def test_a_parcel_cancelled_before_it_was_asked_for_is_refused_when_it_is() -> None:
    order = order_with(("f-north", "north", {"MUG": 2}))
    order.cancel("f-south")
    settle(order)

    created = order.ask_for(
        fulfillment_id="f-south", location="south", lines=[Line("TEA", 1)], address=HOME
    )

    assert created is None
    refused = parcel(order, "f-south")
    assert (refused.status, refused.location) == (ShipmentStatus.CANCELLED, "south")
    assert announced(order) == [Cancelled("s-2", "o-1")]
    # Only that parcel: another one of the order is still made.
    assert order.ask_for(
        fulfillment_id="f-east", location="east", lines=[Line("CUP", 1)], address=HOME
    )


def test_after_the_whole_order_was_cancelled_before_any_parcel_every_parcel_is_refused() -> None:
    order = OrderParcels("o-1", [], new_id=counted_ids())
    order.cancel(None)
    # The order's only parcel (the order's id, the default location) stands for all.
    assert [(p.id, p.fulfillment_id, p.location) for p in order.parcels] == [
        ("s-1", "o-1", "default")
    ]
    assert announced(order) == [Cancelled("s-1", "o-1")]
    settle(order)

    for fulfillment_id in ("f-north", "f-south"):
        created = order.ask_for(
            fulfillment_id=fulfillment_id, location="north", lines=[Line("MUG", 1)], address=HOME
        )
        assert created is None

    assert statuses(order) == {
        "o-1": ShipmentStatus.CANCELLED,
        "f-north": ShipmentStatus.CANCELLED,
        "f-south": ShipmentStatus.CANCELLED,
    }
    assert announced(order) == [Cancelled("s-2", "o-1"), Cancelled("s-3", "o-1")]


def test_a_parcel_asked_for_after_the_whole_order_was_cancelled_is_refused() -> None:
    order = order_with(("f-north", "north", {"MUG": 2}))
    order.cancel(None)
    settle(order)

    order.ask_for(fulfillment_id="f-south", location="south", lines=[Line("TEA", 1)], address=HOME)

    assert parcel(order, "f-south").status is ShipmentStatus.CANCELLED
    assert announced(order) == [Cancelled("s-2", "o-1")]


def test_a_repeated_cancellation_of_the_order_is_answered_again() -> None:
    order = two_parcels()
    order.cancel(None)
    settle(order)

    order.cancel(None)

    assert announced(order) == [Cancelled("s-1", "o-1"), Cancelled("s-2", "o-1")]


# -- holding and releasing ------------------------------------------------------------


def test_holding_an_order_holds_every_parcel_and_answers_once() -> None:
    order = two_parcels()

    order.hold()

    assert set(statuses(order).values()) == {ShipmentStatus.ON_HOLD}
    assert announced(order) == [Held("s-1", "o-1")]


def test_a_hold_is_refused_once_one_parcel_left_and_nothing_is_held() -> None:
    order = two_parcels()
    dispatch(order, "f-south")

    order.hold()

    assert statuses(order) == {"f-north": "created", "f-south": ShipmentStatus.DISPATCHED}
    assert announced(order) == [HoldRefused("s-1", "o-1", "already_dispatched")]


def test_a_cancelled_parcel_does_not_stand_in_the_way_of_a_hold() -> None:
    order = two_parcels()
    order.cancel("f-north")
    settle(order)

    order.hold()

    assert statuses(order) == {"f-north": "cancelled", "f-south": ShipmentStatus.ON_HOLD}
    assert announced(order) == [Held("s-2", "o-1")]


def test_a_hold_of_an_order_whose_parcels_were_all_cancelled_is_refused_naming_it() -> None:
    order = two_parcels()
    order.cancel(None)
    settle(order)

    order.hold()

    assert announced(order) == [HoldRefused("s-1", "o-1", "shipment_cancelled")]


def test_a_hold_before_any_parcel_exists_waits_for_the_parcels() -> None:
    with pytest.raises(NotCreatedYet):
        OrderParcels("o-1", []).hold()


def test_releasing_lets_every_held_parcel_go_again() -> None:
    order = two_parcels()
    order.hold()
    settle(order)

    order.release()

    assert set(statuses(order).values()) == {ShipmentStatus.CREATED}
    assert announced(order) == [Released("s-1", "o-1")]


# -- updating --------------------------------------------------------------------------


def held_two_parcels() -> OrderParcels:
    order = two_parcels()
    order.hold()
    settle(order)
    return order


def test_an_update_gives_kept_parcels_their_new_lines_and_ends_the_hold() -> None:
    order = held_two_parcels()
    lines = [Line("MUG", 3), Line("TEA", 2)]
    plans = [plan("f-north", "north", MUG=3), plan("f-south", "south", TEA=2)]

    order.update(lines, plans)

    assert parcel(order, "f-north").lines == [Line("MUG", 3)]
    assert parcel(order, "f-south").lines == [Line("TEA", 2)]
    assert set(statuses(order).values()) == {ShipmentStatus.CREATED}
    assert announced(order) == [Updated("s-1", "o-1", tuple(lines), tuple(plans))]


def test_an_update_moving_lines_to_a_new_parcel_creates_it_and_cancels_the_one_left_out() -> None:
    order = held_two_parcels()
    lines = [Line("MUG", 2), Line("CUP", 4)]
    plans = [plan("f-north", "north", MUG=2), plan("f-east", "east", CUP=4)]

    order.update(lines, plans)

    assert statuses(order) == {
        "f-north": ShipmentStatus.CREATED,
        "f-south": ShipmentStatus.CANCELLED,
        "f-east": ShipmentStatus.CREATED,
    }
    new = parcel(order, "f-east")
    assert (new.id, new.location, new.lines, new.address) == ("s-3", "east", [Line("CUP", 4)], HOME)
    assert announced(order) == [
        Cancelled("s-2", "o-1"),
        Created("s-3", "o-1"),
        Updated("s-1", "o-1", tuple(lines), tuple(plans)),
    ]


def test_an_update_bringing_back_a_cancelled_parcel_creates_it_anew() -> None:
    order = held_two_parcels()
    order.update([Line("MUG", 2)], [plan("f-north", "north", MUG=2)])
    order.hold()
    settle(order)

    order.update(
        [Line("MUG", 2), Line("TEA", 5)],
        [plan("f-north", "north", MUG=2), plan("f-south", "south", TEA=5)],
    )

    south = parcel(order, "f-south")
    assert (south.status, south.lines, south.address) == ("created", [Line("TEA", 5)], HOME)
    assert announced(order)[:1] == [Created("s-2", "o-1")]


def test_an_update_is_answered_with_the_order_s_parcels_as_they_now_stand() -> None:
    order = held_two_parcels()
    plans = (plan("f-north", "north", MUG=1),)

    order.update([Line("MUG", 1)], plans)

    answer = announced(order)[-1]
    assert isinstance(answer, Updated) and answer.parcels == plans


def test_an_update_of_an_order_that_is_not_held_changes_nothing_and_is_not_answered() -> None:
    order = two_parcels()  # never held (or released meanwhile)

    order.update([Line("MUG", 9)], [plan("f-north", "north", MUG=9)])

    assert parcel(order, "f-north").lines == [Line("MUG", 2)]
    assert statuses(order) == {"f-north": "created", "f-south": "created"}
    assert announced(order) == []


def test_a_repeated_update_is_answered_again_without_changing_anything() -> None:
    order = held_two_parcels()
    lines = [Line("MUG", 2)]
    plans = [plan("f-north", "north", MUG=2)]
    order.update(lines, plans)
    settle(order)

    order.update(lines, plans)

    assert statuses(order) == {"f-north": "created", "f-south": "cancelled"}
    assert announced(order) == [Updated("s-1", "o-1", tuple(lines), tuple(plans))]


def test_a_repeated_update_after_a_parcel_left_is_still_answered() -> None:
    order = held_two_parcels()
    lines = [Line("MUG", 2), Line("TEA", 1)]
    plans = [plan("f-north", "north", MUG=2), plan("f-south", "south", TEA=1)]
    order.update(lines, plans)
    dispatch(order, "f-north")

    order.update(lines, plans)

    assert announced(order) == [Updated("s-1", "o-1", tuple(lines), tuple(plans))]


def test_an_update_without_parcels_means_the_order_s_only_parcel() -> None:
    order = order_with(("o-1", "default", {"MUG": 2}))
    order.hold()
    settle(order)

    order.update([Line("MUG", 5)], [])

    only = parcel(order, "o-1")
    assert (only.status, only.lines) == (ShipmentStatus.CREATED, [Line("MUG", 5)])
    assert announced(order) == [
        Updated("s-1", "o-1", (Line("MUG", 5),), (plan("o-1", "default", MUG=5),))
    ]
