"""A return parcel's rules: its label, its cancellation (also before the label, and
after the goods arrived), and what the warehouse may book in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from oms_shipping.domain.returns import (
    AnnouncedLine,
    Cancelled,
    Condition,
    InvalidReceipt,
    LabelCreated,
    Received,
    ReceivedLine,
    ReturnAlreadyReceived,
    ReturnIsCancelled,
    ReturnParcel,
    ReturnStatus,
)

from .parcels import HOME

NOW = datetime(2026, 12, 3, 10, tzinfo=UTC)
RESELLABLE, DAMAGED = Condition.RESELLABLE, Condition.DAMAGED


def labelled(*lines: tuple[str, int, str]) -> ReturnParcel:
    """Return r-1 of order o-1 announcing (sku, quantity, location) lines, its label
    issued (TRK-R1) and announced already."""
    parcel = ReturnParcel.with_label(
        return_id="r-1",
        order_id="o-1",
        lines=[AnnouncedLine(*line) for line in lines or [("MUG", 2, "north")]],
        pickup_address=HOME,
        tracking_number="TRK-R1",
    )
    parcel.events.clear()
    return parcel


def got(sku: str, quantity: int, condition: Condition = RESELLABLE) -> ReceivedLine:
    return ReceivedLine(sku, quantity, condition)


def fields_refused(parcel: ReturnParcel, *items: ReceivedLine) -> list[str]:
    with pytest.raises(InvalidReceipt) as refused:
        parcel.receive(list(items), NOW)
    return [problem.field for problem in refused.value.problems]


# -- the label -------------------------------------------------------------------------


def test_an_approved_return_gets_a_label_with_the_announced_lines_and_pickup_address() -> None:
    parcel = ReturnParcel.with_label(
        return_id="r-1",
        order_id="o-1",
        lines=[AnnouncedLine("MUG", 2, "north"), AnnouncedLine("TEA", 1, "default")],
        pickup_address=HOME,
        tracking_number="TRK-R1",
    )

    assert parcel.status is ReturnStatus.LABEL_CREATED
    assert (parcel.return_tracking_number, parcel.pickup_address) == ("TRK-R1", HOME)
    assert [line.location for line in parcel.lines] == ["north", "default"]
    assert parcel.events == [LabelCreated("r-1", "o-1", "TRK-R1")]


def test_a_label_asked_for_again_answers_the_same_label() -> None:
    parcel = labelled()

    parcel.label_asked_again()

    assert parcel.events == [LabelCreated("r-1", "o-1", "TRK-R1")]
    assert parcel.status is ReturnStatus.LABEL_CREATED


def test_a_label_asked_for_after_the_goods_arrived_answers_the_same_label() -> None:
    parcel = labelled()
    parcel.receive([got("MUG", 2)], NOW)
    parcel.events.clear()

    parcel.label_asked_again()

    assert parcel.events == [LabelCreated("r-1", "o-1", "TRK-R1")]
    assert parcel.status is ReturnStatus.RECEIVED


# -- cancelling ------------------------------------------------------------------------


def test_a_return_cancelled_before_its_goods_arrive_is_cancelled() -> None:
    parcel = labelled()

    parcel.cancel()

    assert parcel.status is ReturnStatus.CANCELLED
    assert parcel.events == [Cancelled("r-1", "o-1")]


def test_a_cancellation_asked_again_is_answered_again() -> None:
    parcel = labelled()
    parcel.cancel()
    parcel.events.clear()

    parcel.cancel()

    assert parcel.status is ReturnStatus.CANCELLED
    assert parcel.events == [Cancelled("r-1", "o-1")]


def test_a_cancellation_after_the_goods_arrived_answers_with_what_arrived() -> None:
    parcel = labelled(("MUG", 2, "north"), ("TEA", 1, "default"))
    parcel.receive([got("MUG", 1), got("TEA", 1, DAMAGED)], NOW)
    parcel.events.clear()

    parcel.cancel()

    assert parcel.status is ReturnStatus.RECEIVED
    assert parcel.events == [
        Received("r-1", "o-1", (got("MUG", 1), got("TEA", 1, DAMAGED))),
    ]


def test_a_cancellation_before_the_label_is_remembered_and_the_late_label_is_refused() -> None:
    parcel = ReturnParcel.cancelled_before_label(return_id="r-1", order_id="o-1")
    assert parcel.events == [Cancelled("r-1", "o-1")]
    parcel.events.clear()

    parcel.label_asked_again()

    assert parcel.status is ReturnStatus.CANCELLED
    assert parcel.return_tracking_number is None
    assert (parcel.lines, parcel.pickup_address) == ([], None)
    assert parcel.events == [Cancelled("r-1", "o-1")]


# -- receiving ---------------------------------------------------------------------------


def test_receiving_less_than_announced_books_in_what_arrived() -> None:
    parcel = labelled(("MUG", 3, "north"), ("TEA", 1, "default"))

    parcel.receive([got("MUG", 1), got("MUG", 1, DAMAGED)], NOW)

    assert parcel.status is ReturnStatus.RECEIVED
    assert parcel.received == [got("MUG", 1), got("MUG", 1, DAMAGED)]
    assert parcel.received_at == NOW
    assert parcel.events == [Received("r-1", "o-1", (got("MUG", 1), got("MUG", 1, DAMAGED)))]


def test_lines_of_one_sku_and_condition_are_booked_as_one_and_empty_ones_dropped() -> None:
    parcel = labelled(("MUG", 3, "north"), ("TEA", 1, "default"))

    parcel.receive([got("MUG", 1), got("TEA", 0), got("MUG", 2)], NOW)

    assert parcel.received == [got("MUG", 3)]


def test_units_of_a_sku_announced_from_two_locations_may_all_arrive() -> None:
    parcel = labelled(("MUG", 2, "north"), ("MUG", 1, "south"))

    parcel.receive([got("MUG", 2), got("MUG", 1, DAMAGED)], NOW)

    assert parcel.received == [got("MUG", 2), got("MUG", 1, DAMAGED)]


def test_receiving_twice_is_refused_and_changes_nothing() -> None:
    parcel = labelled()
    parcel.receive([got("MUG", 1)], NOW)
    parcel.events.clear()

    with pytest.raises(ReturnAlreadyReceived):
        parcel.receive([got("MUG", 1, DAMAGED)], NOW)

    assert parcel.received == [got("MUG", 1)]
    assert parcel.events == []


def test_receiving_a_cancelled_return_is_refused() -> None:
    parcel = labelled()
    parcel.cancel()
    parcel.events.clear()

    with pytest.raises(ReturnIsCancelled):
        parcel.receive([got("MUG", 1)], NOW)

    assert (parcel.status, parcel.received, parcel.events) == (ReturnStatus.CANCELLED, [], [])


def test_a_sku_the_return_did_not_announce_is_refused_naming_its_sku_field() -> None:
    parcel = labelled()

    assert fields_refused(parcel, got("MUG", 1), got("TEA", 1)) == ["items[1].sku"]
    assert (parcel.status, parcel.received) == (ReturnStatus.LABEL_CREATED, [])


def test_more_units_of_a_sku_than_announced_summed_over_conditions_are_refused() -> None:
    parcel = labelled(("MUG", 2, "north"))

    assert fields_refused(parcel, got("MUG", 1), got("MUG", 2, DAMAGED)) == ["items[1].quantity"]
    assert fields_refused(parcel, got("MUG", 3)) == ["items[0].quantity"]


def test_units_of_a_sku_over_two_locations_count_against_both_lines_together() -> None:
    parcel = labelled(("MUG", 2, "north"), ("MUG", 1, "south"))

    assert fields_refused(parcel, got("MUG", 2), got("MUG", 2, DAMAGED)) == ["items[1].quantity"]


def test_a_negative_quantity_is_refused_naming_its_quantity_field() -> None:
    parcel = labelled()

    assert fields_refused(parcel, got("MUG", 1), got("MUG", -1, DAMAGED)) == ["items[1].quantity"]


def test_a_receipt_of_nothing_at_all_is_refused_naming_the_items() -> None:
    parcel = labelled()

    assert fields_refused(parcel) == ["items"]
    assert fields_refused(parcel, got("MUG", 0), got("MUG", 0, DAMAGED)) == ["items"]
    assert parcel.events == []


def test_every_problem_of_a_receipt_is_named_and_the_first_is_the_field() -> None:
    parcel = labelled(("MUG", 1, "north"))

    with pytest.raises(InvalidReceipt) as refused:
        parcel.receive([got("TEA", 1), got("MUG", 2), got("MUG", -3)], NOW)

    extensions = refused.value.extensions
    assert extensions["field"] == "items[0].sku"
    assert [error["field"] for error in extensions["errors"]] == [  # type: ignore[attr-defined]
        "items[0].sku",
        "items[1].quantity",
        "items[2].quantity",
    ]


# -- erasure -------------------------------------------------------------------------------


def test_erasing_personal_data_forgets_the_pickup_address_and_keeps_the_rest() -> None:
    parcel = labelled()
    parcel.receive([got("MUG", 1)], NOW)

    parcel.erase_personal_data()

    assert parcel.pickup_address is None
    assert (parcel.return_tracking_number, parcel.received) == ("TRK-R1", [got("MUG", 1)])
