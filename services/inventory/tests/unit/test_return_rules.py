"""Returned goods in the stock: resellable units back on hand where they came back
to, damaged ones counted apart and never sellable, each return booked once, and the
ledger still adding up."""

from __future__ import annotations

import pytest

from oms_inventory.domain.allocation import Location
from oms_inventory.domain.model import (
    DEFAULT,
    InvalidQuantity,
    LowStockDetected,
    MovementReason,
    NotStockedThere,
    Product,
    ReturnCondition,
    ReturnedUnits,
    StockLevel,
    StockMovement,
    StockReturn,
    StockReturned,
)

RESELLABLE, DAMAGED = ReturnCondition.RESELLABLE, ReturnCondition.DAMAGED
BERLIN = Location("BER", "DE", priority=1)


def mug(low_stock_threshold: int = 0, **at: int) -> Product:
    """A mug stocked at `default` (10) and at the locations given."""
    sites = {"default": DEFAULT, "BER": BERLIN}
    return Product(
        sku="MUG",
        name="Mug",
        unit_price=500,
        currency="EUR",
        low_stock_threshold=low_stock_threshold,
        levels={
            code: StockLevel(sites[code], on_hand)
            for code, on_hand in {"default": 10, **at}.items()
        },
    )


def test_resellable_units_are_on_hand_again_at_their_location_as_a_return_movement() -> None:
    product = mug(BER=4)

    product.take_back(3, RESELLABLE, "o-1", "r-1", "BER")

    assert (product.level("BER").on_hand, product.level("BER").available) == (7, 7)
    assert product.level("default").on_hand == 10
    assert product.movements == [
        StockMovement("MUG", MovementReason.RETURN, 3, 0, "o-1", "r-1", "BER")
    ]


def test_damaged_units_are_counted_at_their_location_but_never_on_hand() -> None:
    product = mug(BER=4)

    product.take_back(2, DAMAGED, "o-1", "r-1", "BER")

    level = product.level("BER")
    assert (level.on_hand, level.available, level.damaged) == (4, 4, 2)
    assert (product.on_hand, product.damaged) == (14, 2)
    assert product.movements == [
        StockMovement("MUG", MovementReason.RETURN_DAMAGED, 0, 0, "o-1", "r-1", "BER", 2)
    ]


def test_returned_units_of_no_unit_are_refused() -> None:
    product = mug()

    with pytest.raises(InvalidQuantity):
        product.take_back(0, RESELLABLE, "o-1", "r-1")

    assert product.movements == []


def test_units_returned_where_the_product_has_no_stock_record_are_refused() -> None:
    # The handler gives the product a stock record there first.
    with pytest.raises(NotStockedThere):
        mug().take_back(1, RESELLABLE, "o-1", "r-1", "BER")


def test_resellable_units_lifting_stock_over_the_threshold_end_the_low_stock_alert() -> None:
    product = mug(low_stock_threshold=3, BER=4)
    product.reserve(2, "o-9", "BER")  # 2 available: low
    assert product.level("BER").low_stock_alerted

    product.take_back(2, RESELLABLE, "o-1", "r-1", "BER")
    product.reserve(2, "o-10", "BER")  # low again: a new crossing

    assert product.events == [
        LowStockDetected("MUG", 2, 3, 3, "BER"),
        LowStockDetected("MUG", 2, 3, 3, "BER"),
    ]


def test_damaged_units_do_not_end_a_low_stock_alert() -> None:
    product = mug(low_stock_threshold=3, BER=2)
    product.review_low_stock()

    product.take_back(5, DAMAGED, "o-1", "r-1", "BER")

    assert product.level("BER").low_stock_alerted
    assert product.events == [LowStockDetected("MUG", 2, 3, 3, "BER")]


def test_the_ledger_adds_up_with_returns_in_it() -> None:
    product = Product.create(sku="MUG", name="Mug", unit_price=500, currency="EUR", on_hand=10)
    product.reserve(4, "o-1")
    product.ship(4, "o-1")
    product.take_back(3, RESELLABLE, "o-1", "r-1")
    product.take_back(1, DAMAGED, "o-1", "r-1")
    product.restock(2)

    def total(reason: MovementReason) -> int:
        return sum(m.on_hand_delta for m in product.movements if m.reason is reason)

    shipped = -total(MovementReason.SHIP)
    assert product.on_hand + shipped == (
        total(MovementReason.INITIAL)
        + total(MovementReason.RESTOCK)
        + total(MovementReason.ADJUSTMENT)
        + total(MovementReason.RETURN)
    )
    assert (product.on_hand, product.damaged) == (11, 1)
    assert sum(m.on_hand_delta for m in product.movements) == product.on_hand
    assert sum(m.damaged_delta for m in product.movements) == product.damaged


# -- a return's booking ----------------------------------------------------------------


def lines(*units: tuple[int, ReturnCondition, str]) -> list[ReturnedUnits]:
    return [ReturnedUnits("MUG", quantity, condition, at) for quantity, condition, at in units]


def test_a_return_books_each_line_at_its_location_and_says_what_it_booked() -> None:
    product = mug(BER=0)
    booking = StockReturn.absent("r-1", "o-1")
    returned = lines((2, RESELLABLE, "BER"), (1, DAMAGED, "BER"), (1, RESELLABLE, "default"))

    booking.book(returned, {"MUG": product})

    assert booking.booked
    assert (product.level("BER").on_hand, product.level("BER").damaged) == (2, 1)
    assert product.level("default").on_hand == 11
    assert booking.events == [StockReturned("o-1", "r-1", tuple(returned))]


def test_a_return_booked_before_books_nothing_more_and_answers_the_first_booking() -> None:
    product = mug(BER=0)
    booking = StockReturn.absent("r-1", "o-1")
    first = lines((2, RESELLABLE, "BER"))
    booking.book(first, {"MUG": product})

    booking.book(lines((5, DAMAGED, "BER")), {"MUG": product})

    assert (product.level("BER").on_hand, product.level("BER").damaged) == (2, 0)
    assert booking.events == [StockReturned("o-1", "r-1", tuple(first))] * 2


def test_a_return_with_a_line_of_no_unit_books_none_of_its_lines() -> None:
    product = mug(BER=0)
    booking = StockReturn.absent("r-1", "o-1")

    with pytest.raises(InvalidQuantity):
        booking.book(lines((2, RESELLABLE, "BER"), (0, DAMAGED, "BER")), {"MUG": product})

    assert (booking.booked, product.movements, product.level("BER").on_hand) == (False, [], 0)
