"""Stock, reservations and low-stock alerts (pure domain rules, no database)."""

from __future__ import annotations

import pytest

from oms_inventory.domain.model import (
    DEFAULT,
    InsufficientStock,
    LowStockDetected,
    Product,
    Reservation,
    ReservationStatus,
    ReservedLine,
    StockError,
    StockLevel,
    release_nothing,
    reserve,
)


def product(
    sku: str,
    on_hand: int,
    *,
    reserved: int = 0,
    unit_price: int = 1000,
    currency: str = "EUR",
    low_stock_threshold: int = 0,
    reorder_quantity: int = 0,
) -> Product:
    """A product stocked at the `default` location only (a single-warehouse shop)."""
    return Product(
        sku=sku,
        name=sku,
        unit_price=unit_price,
        currency=currency,
        low_stock_threshold=low_stock_threshold,
        reorder_quantity=reorder_quantity,
        levels={"default": StockLevel(DEFAULT, on_hand, reserved)},
    )


# -- available stock -----------------------------------------------------------------


def test_available_stock_is_what_is_on_hand_minus_what_is_reserved() -> None:
    mug = product("MUG", on_hand=10, reserved=3)

    assert mug.available == 7


def test_reserving_stock_lowers_what_is_available_but_not_what_is_on_hand() -> None:
    mug = product("MUG", on_hand=10)

    mug.reserve(4, "o-1")

    assert (mug.on_hand, mug.reserved, mug.available) == (10, 4, 6)


def test_reserving_more_than_is_available_is_refused_and_reserves_nothing() -> None:
    mug = product("MUG", on_hand=5, reserved=3)

    with pytest.raises(InsufficientStock):
        mug.reserve(3, "o-1")

    assert mug.reserved == 3


def test_releasing_stock_makes_it_available_again() -> None:
    mug = product("MUG", on_hand=10, reserved=4)

    mug.release(4, "o-1")

    assert (mug.on_hand, mug.reserved, mug.available) == (10, 0, 10)


def test_shipping_reserved_goods_lowers_both_on_hand_and_reserved() -> None:
    mug = product("MUG", on_hand=10, reserved=4)

    mug.ship(4, "o-1")

    assert (mug.on_hand, mug.reserved, mug.available) == (6, 0, 6)


def test_restocking_adds_to_what_is_on_hand() -> None:
    mug = product("MUG", on_hand=10, reserved=2)

    mug.restock(5)

    assert (mug.on_hand, mug.available) == (15, 13)


@pytest.mark.parametrize("quantity", [0, -3])
def test_restocking_a_non_positive_quantity_is_refused(quantity: int) -> None:
    mug = product("MUG", on_hand=10)

    with pytest.raises(StockError):
        mug.restock(quantity)

    assert mug.on_hand == 10


def test_a_stock_count_correction_cannot_drop_on_hand_below_what_is_reserved() -> None:
    mug = product("MUG", on_hand=10, reserved=6)

    with pytest.raises(StockError, match="6 units reserved"):
        mug.update(on_hand=5)

    assert mug.on_hand == 10


def test_a_refused_stock_count_correction_changes_none_of_the_other_fields() -> None:
    mug = product("MUG", on_hand=10, reserved=6)

    with pytest.raises(StockError):
        mug.update(name="Big mug", unit_price=2500, on_hand=5)

    assert (mug.name, mug.unit_price) == ("MUG", 1000)


def test_a_stock_count_correction_down_to_exactly_what_is_reserved_is_accepted() -> None:
    mug = product("MUG", on_hand=10, reserved=6)

    mug.update(on_hand=6)

    assert (mug.on_hand, mug.available) == (6, 0)


# -- all-or-nothing reservations -------------------------------------------------------


def test_an_order_whose_lines_all_fit_reserves_every_line() -> None:
    products = {"MUG": product("MUG", on_hand=10), "TEA": product("TEA", on_hand=5)}

    reservation = reserve("order-1", {"MUG": 2, "TEA": 5}, products)

    assert reservation.status is ReservationStatus.RESERVED
    assert (products["MUG"].reserved, products["TEA"].reserved) == (2, 5)


def test_an_order_line_that_does_not_fit_refuses_the_whole_reservation() -> None:
    products = {"MUG": product("MUG", on_hand=10), "TEA": product("TEA", on_hand=1)}

    reservation = reserve("order-1", {"MUG": 2, "TEA": 3}, products)

    assert reservation.status is ReservationStatus.REFUSED
    assert reservation.refusal_reason == "out_of_stock"
    assert (products["MUG"].reserved, products["TEA"].reserved) == (0, 0)
    assert reservation.lines == []


def test_a_refusal_names_exactly_the_short_skus_in_sorted_order() -> None:
    products = {
        "ZEBRA": product("ZEBRA", on_hand=0),
        "MUG": product("MUG", on_hand=10),
        "APPLE": product("APPLE", on_hand=1),
    }

    reservation = reserve("order-1", {"ZEBRA": 1, "MUG": 2, "APPLE": 2}, products)

    assert reservation.refused_skus == ["APPLE", "ZEBRA"]


def test_stock_already_reserved_for_another_order_is_not_available_to_the_next() -> None:
    products = {"MUG": product("MUG", on_hand=3)}
    reserve("order-1", {"MUG": 2}, products)

    second = reserve("order-2", {"MUG": 2}, products)

    assert second.status is ReservationStatus.REFUSED
    assert second.refused_skus == ["MUG"]
    assert products["MUG"].reserved == 2


def test_an_order_for_an_unknown_sku_is_refused_naming_the_unknown_skus() -> None:
    products = {"MUG": product("MUG", on_hand=10)}

    reservation = reserve("order-1", {"MUG": 1, "NOPE": 1, "GONE": 1}, products)

    assert reservation.status is ReservationStatus.REFUSED
    assert reservation.refusal_reason == "unknown_sku"
    assert reservation.refused_skus == ["GONE", "NOPE"]
    assert products["MUG"].reserved == 0


def test_an_order_mixing_currencies_is_refused_and_reserves_nothing() -> None:
    products = {
        "MUG": product("MUG", on_hand=10, currency="EUR"),
        "TEA": product("TEA", on_hand=10, currency="USD"),
    }

    reservation = reserve("order-1", {"TEA": 1, "MUG": 1}, products)

    assert reservation.status is ReservationStatus.REFUSED
    assert reservation.refusal_reason == "currency_mismatch"
    assert reservation.refused_skus == ["MUG", "TEA"]
    assert (products["MUG"].reserved, products["TEA"].reserved) == (0, 0)


def test_a_reservation_copies_each_products_unit_price_and_the_currency() -> None:
    products = {
        "MUG": product("MUG", on_hand=10, unit_price=1250),
        "TEA": product("TEA", on_hand=10, unit_price=399),
    }

    reservation = reserve("order-1", {"MUG": 2, "TEA": 1}, products)

    assert reservation.lines == [ReservedLine("MUG", 2, 1250), ReservedLine("TEA", 1, 399)]
    assert reservation.currency == "EUR"


def test_a_later_price_change_does_not_change_the_price_in_an_existing_reservation() -> None:
    products = {"MUG": product("MUG", on_hand=10, unit_price=1250)}
    reservation = reserve("order-1", {"MUG": 1}, products)

    products["MUG"].update(unit_price=9999)

    assert reservation.lines[0].unit_price == 1250


# -- releasing and committing reservations ---------------------------------------------


def test_releasing_a_reservation_gives_every_line_back_to_stock() -> None:
    products = {"MUG": product("MUG", on_hand=10), "TEA": product("TEA", on_hand=5)}
    reservation = reserve("order-1", {"MUG": 2, "TEA": 3}, products)

    released = reservation.release(products)

    assert released is True
    assert reservation.status is ReservationStatus.RELEASED
    assert (products["MUG"].available, products["TEA"].available) == (10, 5)


def test_releasing_a_reservation_twice_gives_the_stock_back_only_once() -> None:
    products = {"MUG": product("MUG", on_hand=10, reserved=1)}
    reservation = reserve("order-1", {"MUG": 2}, products)
    reservation.release(products)

    again = reservation.release(products)

    assert again is False
    assert products["MUG"].reserved == 1


def test_committing_a_reservation_ships_its_goods_out_of_stock() -> None:
    products = {"MUG": product("MUG", on_hand=10), "TEA": product("TEA", on_hand=5)}
    reservation = reserve("order-1", {"MUG": 2, "TEA": 3}, products)

    committed = reservation.commit(products)

    assert committed is True
    assert reservation.status is ReservationStatus.COMMITTED
    assert (products["MUG"].on_hand, products["MUG"].reserved) == (8, 0)
    assert (products["TEA"].on_hand, products["TEA"].reserved) == (2, 0)


def test_committing_a_reservation_twice_ships_the_goods_only_once() -> None:
    products = {"MUG": product("MUG", on_hand=10)}
    reservation = reserve("order-1", {"MUG": 2}, products)
    reservation.commit(products)

    again = reservation.commit(products)

    assert again is False
    assert products["MUG"].on_hand == 8


def test_a_committed_reservation_can_no_longer_be_released() -> None:
    products = {"MUG": product("MUG", on_hand=10)}
    reservation = reserve("order-1", {"MUG": 2}, products)
    reservation.commit(products)

    released = reservation.release(products)

    assert released is False
    assert reservation.status is ReservationStatus.COMMITTED
    assert (products["MUG"].on_hand, products["MUG"].reserved) == (8, 0)


def test_a_released_reservation_can_no_longer_be_committed() -> None:
    products = {"MUG": product("MUG", on_hand=10)}
    reservation = reserve("order-1", {"MUG": 2}, products)
    reservation.release(products)

    committed = reservation.commit(products)

    assert committed is False
    assert reservation.status is ReservationStatus.RELEASED
    assert products["MUG"].on_hand == 10


def test_a_refused_reservation_has_nothing_to_release_or_commit() -> None:
    products = {"MUG": product("MUG", on_hand=1, reserved=1)}
    refused = reserve("order-1", {"MUG": 1}, products)

    assert refused.release(products) is False
    assert refused.commit(products) is False
    assert refused.status is ReservationStatus.REFUSED
    assert (products["MUG"].on_hand, products["MUG"].reserved) == (1, 1)


def test_a_release_that_arrives_before_any_reservation_is_remembered_as_released() -> None:
    tombstone = release_nothing("order-1")

    assert tombstone == Reservation(order_id="order-1", status=ReservationStatus.RELEASED)
    assert tombstone.release({}) is False
    assert tombstone.commit({}) is False


# -- low-stock alerts ------------------------------------------------------------------


def test_reserving_down_to_the_low_stock_threshold_raises_a_low_stock_alert() -> None:
    mug = product("MUG", on_hand=10, low_stock_threshold=3, reorder_quantity=50)

    mug.reserve(7, "o-1")

    assert mug.events == [LowStockDetected("MUG", 3, 3, 50)]


def test_stock_still_above_the_threshold_raises_no_alert() -> None:
    mug = product("MUG", on_hand=10, low_stock_threshold=3)

    mug.reserve(6, "o-1")

    assert mug.events == []


def test_further_reservations_below_the_threshold_do_not_raise_another_alert() -> None:
    mug = product("MUG", on_hand=10, low_stock_threshold=3)
    mug.reserve(7, "o-1")

    mug.reserve(1, "o-1")
    mug.reserve(1, "o-1")

    assert len(mug.events) == 1


def test_a_reservation_across_several_skus_alerts_only_for_the_skus_that_went_low() -> None:
    products = {
        "MUG": product("MUG", on_hand=10, low_stock_threshold=5),
        "TEA": product("TEA", on_hand=10, low_stock_threshold=5),
    }

    reserve("order-1", {"MUG": 6, "TEA": 1}, products)

    assert [e.sku for e in products["MUG"].events] == ["MUG"]
    assert products["TEA"].events == []


def test_a_release_that_lifts_stock_above_the_threshold_rearms_the_alert() -> None:
    mug = product("MUG", on_hand=10, low_stock_threshold=3)
    mug.reserve(8, "o-1")

    mug.release(8, "o-1")
    mug.reserve(8, "o-1")

    assert [e.available for e in mug.events] == [2, 2]


def test_a_release_that_leaves_stock_still_low_does_not_rearm_the_alert() -> None:
    mug = product("MUG", on_hand=10, low_stock_threshold=3)
    mug.reserve(9, "o-1")

    mug.release(2, "o-1")
    mug.reserve(1, "o-1")

    assert mug.level().low_stock_alerted is True
    assert len(mug.events) == 1


def test_a_restock_above_the_threshold_rearms_the_alert_for_the_next_crossing() -> None:
    mug = product("MUG", on_hand=5, low_stock_threshold=3)
    mug.reserve(3, "o-1")

    mug.restock(10)
    assert mug.level().low_stock_alerted is False
    mug.reserve(10, "o-1")

    assert [e.available for e in mug.events] == [2, 2]


def test_a_restock_that_stays_at_or_below_the_threshold_raises_no_new_alert() -> None:
    mug = product("MUG", on_hand=5, low_stock_threshold=5)
    mug.reserve(4, "o-1")

    mug.restock(3)
    mug.reserve(1, "o-1")

    assert mug.level().low_stock_alerted is True
    assert len(mug.events) == 1


def test_a_product_with_a_zero_threshold_never_raises_a_low_stock_alert() -> None:
    mug = product("MUG", on_hand=5, low_stock_threshold=0)

    mug.reserve(5, "o-1")

    assert mug.available == 0
    assert mug.events == []
    assert mug.level().low_stock_alerted is False


def test_raising_the_threshold_above_available_stock_raises_a_low_stock_alert() -> None:
    mug = product("MUG", on_hand=10, low_stock_threshold=2, reorder_quantity=20)

    mug.update(low_stock_threshold=10)

    assert mug.events == [LowStockDetected("MUG", 10, 10, 20)]
