"""Stock kept at several locations: levels, reservations allocated across them,
commits per location, releases after a partial commit, re-allocation when the items
change (pure domain rules, no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms_inventory.domain.allocation import Location
from oms_inventory.domain.model import (
    DEFAULT,
    InsufficientStock,
    LowStockDetected,
    MovementReason,
    NothingReserved,
    OnHandBelowReserved,
    Product,
    Reservation,
    ReservationStatus,
    ReservedLine,
    StockLevel,
    StockReserved,
    StockShipped,
    reserve,
)

BERLIN = Location("BER", "DE", priority=1, serves=frozenset({"DE", "AT"}))
PARIS = Location("PAR", "FR", priority=2)
MADRID = Location("MAD", "ES", priority=3, serves=frozenset({"ES"}))
LATER = datetime(2100, 1, 1, tzinfo=UTC)
SITES = {location.code: location for location in (BERLIN, PARIS, MADRID, DEFAULT)}


def stocked(sku: str, price: int = 1000, threshold: int = 0, **at: int) -> Product:
    """A product with `on_hand` per location code (`BER=5, PAR=3`)."""
    return Product(
        sku=sku,
        name=sku,
        unit_price=price,
        currency="EUR",
        low_stock_threshold=threshold,
        levels={code: StockLevel(SITES[code], on_hand) for code, on_hand in at.items()},
    )


def at(product: Product) -> dict[str, tuple[int, int]]:
    """(on_hand, reserved) per location."""
    return {code: (level.on_hand, level.reserved) for code, level in product.levels.items()}


def parcels(reservation: Reservation) -> dict[str, dict[str, int]]:
    return {parcel.location.code: dict(parcel.lines) for parcel in reservation.parcels()}


# -- stock levels --------------------------------------------------------------------


def test_a_products_totals_add_up_its_stock_at_every_location() -> None:
    mug = stocked("MUG", BER=5, PAR=3)
    mug.reserve(2, "o-1", "PAR")

    assert (mug.on_hand, mug.reserved, mug.available) == (8, 2, 6)
    assert at(mug) == {"BER": (5, 0), "PAR": (3, 2)}


def test_reserving_at_a_location_takes_only_what_that_location_has() -> None:
    mug = stocked("MUG", BER=5, PAR=3)

    with pytest.raises(InsufficientStock):
        mug.reserve(4, "o-1", "PAR")

    assert at(mug) == {"BER": (5, 0), "PAR": (3, 0)}


def test_reserving_where_the_product_is_not_stocked_is_refused() -> None:
    mug = stocked("MUG", BER=5)

    with pytest.raises(InsufficientStock):
        mug.reserve(1, "o-1", "PAR")


def test_a_new_product_opens_its_ledger_at_each_location_it_is_stocked_at() -> None:
    mug = Product.create(
        sku="MUG", name="Mug", unit_price=500, currency="EUR", stock=[(BERLIN, 5), (PARIS, 0)]
    )

    assert at(mug) == {"BER": (5, 0), "PAR": (0, 0)}
    assert [(m.location, m.reason, m.on_hand_delta) for m in mug.movements] == [
        ("BER", MovementReason.INITIAL, 5),
        ("PAR", MovementReason.INITIAL, 0),
    ]


def test_a_new_product_given_only_on_hand_is_stocked_at_the_default_location() -> None:
    mug = Product.create(sku="MUG", name="Mug", unit_price=500, currency="EUR", on_hand=7)

    assert at(mug) == {"default": (7, 0)}


def test_every_movement_names_its_location_and_each_locations_ledger_adds_up() -> None:
    mug = stocked("MUG", BER=5, PAR=3)
    mug.reserve(2, "o-1", "BER")
    mug.ship(2, "o-1", "BER")
    mug.restock(4, location="PAR")
    mug.update(on_hand=6, location="PAR")

    for code, level in mug.levels.items():
        moves = [m for m in mug.movements if m.location == code]
        initial = {"BER": 5, "PAR": 3}[code]
        assert initial + sum(m.on_hand_delta for m in moves) == level.on_hand
        assert sum(m.reserved_delta for m in moves) == level.reserved
    assert at(mug) == {"BER": (3, 0), "PAR": (6, 0)}


def test_a_count_correction_is_checked_against_what_is_reserved_at_that_location() -> None:
    mug = stocked("MUG", BER=5, PAR=3)
    mug.reserve(3, "o-1", "PAR")

    with pytest.raises(OnHandBelowReserved, match="at PAR"):
        mug.update(on_hand=2, location="PAR")
    mug.update(on_hand=0, location="BER")

    assert at(mug) == {"BER": (0, 0), "PAR": (3, 3)}


def test_low_stock_is_watched_per_location_and_the_alert_names_it() -> None:
    mug = stocked("MUG", threshold=2, BER=5, PAR=5)

    mug.reserve(3, "o-1", "BER")
    mug.reserve(1, "o-2", "PAR")

    assert mug.events == [LowStockDetected("MUG", 2, 2, 2, "BER")]


def test_a_restock_at_one_location_rearms_only_that_locations_alert() -> None:
    mug = stocked("MUG", threshold=2, BER=2, PAR=2)
    mug.review_low_stock()
    assert len(mug.events) == 2

    mug.restock(10, location="BER")

    assert (mug.level("BER").low_stock_alerted, mug.level("PAR").low_stock_alerted) == (
        False,
        True,
    )


# -- allocation in the reservation step ------------------------------------------------


def test_an_order_one_location_can_fill_is_reserved_there_alone() -> None:
    mug, tea = stocked("MUG", BER=1, PAR=5), stocked("TEA", BER=5, PAR=5)

    reservation = reserve("o-1", {"MUG": 2, "TEA": 2}, {"MUG": mug, "TEA": tea}, country="DE")

    assert parcels(reservation) == {"PAR": {"MUG": 2, "TEA": 2}}
    assert at(mug) == {"BER": (1, 0), "PAR": (5, 2)}


def test_an_order_no_location_can_fill_alone_is_split_and_each_line_records_its_location() -> None:
    mug = stocked("MUG", price=700, BER=25, PAR=25)

    reservation = reserve("o-1", {"MUG": 30}, {"MUG": mug}, country="DE")

    assert reservation.lines == [
        ReservedLine("MUG", 25, 700, "BER"),
        ReservedLine("MUG", 5, 700, "PAR"),
    ]
    assert at(mug) == {"BER": (25, 25), "PAR": (25, 5)}


def test_only_locations_that_ship_to_the_country_take_part() -> None:
    mug = stocked("MUG", BER=10, MAD=10)

    to_spain = reserve("o-1", {"MUG": 2}, {"MUG": mug}, country="ES")
    to_italy = reserve("o-2", {"MUG": 2}, {"MUG": mug}, country="IT")

    assert parcels(to_spain) == {"MAD": {"MUG": 2}}
    assert to_italy.status is ReservationStatus.REFUSED
    assert (to_italy.refusal_reason, to_italy.refused_skus) == ("out_of_stock", ["MUG"])
    assert at(mug) == {"BER": (10, 0), "MAD": (10, 2)}


def test_stock_a_location_cannot_ship_to_the_country_does_not_count_towards_the_order() -> None:
    mug = stocked("MUG", BER=3, MAD=3)

    refused = reserve("o-1", {"MUG": 4}, {"MUG": mug}, country="DE")

    assert refused.status is ReservationStatus.REFUSED
    assert mug.reserved == 0


def test_an_order_without_a_country_may_be_served_by_every_location() -> None:
    mug = stocked("MUG", MAD=3)

    reservation = reserve("o-1", {"MUG": 3}, {"MUG": mug}, country=None)

    assert parcels(reservation) == {"MAD": {"MUG": 3}}


def test_the_answer_lists_totals_per_sku_and_a_parcel_per_location_preferred_first() -> None:
    mug, tea = stocked("MUG", BER=1, PAR=5), stocked("TEA", BER=4)
    reservation = Reservation.absent("o-1")

    reservation.request({"TEA": 3, "MUG": 3}, {"MUG": mug, "TEA": tea}, LATER, "DE")

    [answer] = reservation.events
    assert isinstance(answer, StockReserved)
    assert [(t.sku, t.quantity) for t in answer.lines] == [("TEA", 3), ("MUG", 3)]
    assert [(p.location.code, p.lines, p.location.serves) for p in answer.parcels] == [
        ("BER", (("TEA", 3),), frozenset({"DE", "AT"})),
        ("PAR", (("MUG", 3),), None),
    ]


# -- committing per location -------------------------------------------------------------


def split_order() -> tuple[Reservation, dict[str, Product]]:
    products = {"MUG": stocked("MUG", BER=4, PAR=5), "TEA": stocked("TEA", PAR=5)}
    reservation = reserve("o-1", {"MUG": 7, "TEA": 1}, products, country="DE")
    assert parcels(reservation) == {"BER": {"MUG": 4}, "PAR": {"MUG": 3, "TEA": 1}}
    return reservation, products


def test_committing_a_location_ships_its_lines_from_there_only() -> None:
    reservation, products = split_order()

    reservation.ship(products, "PAR", "f-par")

    assert at(products["MUG"]) == {"BER": (4, 4), "PAR": (2, 0)}
    assert at(products["TEA"]) == {"PAR": (4, 0)}
    assert reservation.status is ReservationStatus.RESERVED
    assert reservation.events == [
        StockShipped("o-1", (("MUG", 3), ("TEA", 1)), "PAR", "f-par"),
    ]


def test_committing_a_location_again_answers_the_same_and_ships_nothing_more() -> None:
    reservation, products = split_order()
    reservation.ship(products, "BER", "f-ber")

    reservation.ship(products, "BER", "f-ber")

    assert at(products["MUG"]) == {"BER": (0, 0), "PAR": (5, 3)}
    assert reservation.events[0] == reservation.events[1]


def test_the_last_location_committed_completes_the_reservation() -> None:
    reservation, products = split_order()

    reservation.ship(products, "BER")
    reservation.ship(products, "PAR")

    assert reservation.status is ReservationStatus.COMMITTED
    assert (products["MUG"].on_hand, products["MUG"].reserved) == (2, 0)


def test_a_commit_naming_no_location_ships_everything_still_held() -> None:
    reservation, products = split_order()
    reservation.ship(products, "BER")

    reservation.ship(products)

    assert reservation.status is ReservationStatus.COMMITTED
    assert reservation.events[-1] == StockShipped("o-1", (("MUG", 7), ("TEA", 1)))
    assert at(products["MUG"]) == {"BER": (0, 0), "PAR": (2, 0)}


def test_a_commit_for_a_location_the_order_holds_nothing_at_is_refused() -> None:
    reservation, products = split_order()

    with pytest.raises(NothingReserved):
        reservation.ship(products, "MAD")

    assert reservation.events == []


# -- releasing after a partial commit ------------------------------------------------------


def test_a_release_after_one_parcel_left_gives_back_only_the_others() -> None:
    reservation, products = split_order()
    reservation.ship(products, "BER")

    reservation.cancel(products)

    assert reservation.status is ReservationStatus.RELEASED
    assert at(products["MUG"]) == {"BER": (0, 0), "PAR": (5, 0)}
    assert at(products["TEA"]) == {"PAR": (5, 0)}
    assert [line.committed for line in reservation.lines] == [True, False, False]


def test_after_a_partial_release_the_parcel_that_left_still_answers_its_commit() -> None:
    reservation, products = split_order()
    reservation.ship(products, "BER", "f-ber")
    reservation.cancel(products)

    reservation.ship(products, "BER", "f-ber")
    with pytest.raises(NothingReserved):
        reservation.ship(products, "PAR", "f-par")

    assert reservation.events[-1] == StockShipped("o-1", (("MUG", 4),), "BER", "f-ber")
    assert at(products["MUG"]) == {"BER": (0, 0), "PAR": (5, 0)}


def test_an_expiry_after_a_partial_commit_gives_back_what_is_still_held() -> None:
    reservation, products = split_order()
    reservation.ship(products, "PAR")

    assert reservation.expire(products) is True

    assert reservation.status is ReservationStatus.EXPIRED
    assert at(products["MUG"]) == {"BER": (4, 0), "PAR": (2, 0)}


# -- changing the items: allocated afresh -----------------------------------------------------


def test_new_items_are_allocated_afresh_counting_what_the_order_holds() -> None:
    mug = stocked("MUG", BER=4, PAR=6)
    products = {"MUG": mug}
    reservation = reserve("o-1", {"MUG": 3}, products, country="DE")
    assert parcels(reservation) == {"BER": {"MUG": 3}}

    refusal = reservation.adjust({"MUG": 6}, products)

    # Berlin cannot hold 6, Paris can: the whole line moves there, no split.
    assert refusal is None
    assert parcels(reservation) == {"PAR": {"MUG": 6}}
    assert at(mug) == {"BER": (4, 0), "PAR": (6, 6)}


def test_what_an_order_holds_counts_as_available_to_its_new_items() -> None:
    mug = stocked("MUG", BER=4)
    products = {"MUG": mug}
    reservation = reserve("o-1", {"MUG": 4}, products)

    refusal = reservation.adjust({"MUG": 3}, products)

    assert refusal is None
    assert at(mug) == {"BER": (4, 3)}
    assert [(m.reason, m.reserved_delta) for m in mug.movements[-1:]] == [
        (MovementReason.RELEASE, -1)
    ]


def test_new_items_that_cannot_be_allocated_leave_the_old_holds_untouched() -> None:
    mug = stocked("MUG", BER=4, PAR=2)
    products = {"MUG": mug}
    reservation = reserve("o-1", {"MUG": 3}, products)

    refusal = reservation.adjust({"MUG": 7}, products)

    assert refusal == ("out_of_stock", ["MUG"])
    assert parcels(reservation) == {"BER": {"MUG": 3}}
    assert at(mug) == {"BER": (4, 3), "PAR": (2, 0)}


def test_new_items_keep_the_country_the_order_was_allocated_for() -> None:
    mug = stocked("MUG", BER=2, MAD=10)
    products = {"MUG": mug}
    reservation = reserve("o-1", {"MUG": 1}, products, country="DE")

    refusal = reservation.adjust({"MUG": 5}, products)

    assert refusal == ("out_of_stock", ["MUG"])
    assert at(mug) == {"BER": (2, 1), "MAD": (10, 0)}


def test_skus_kept_keep_their_price_and_new_ones_take_todays() -> None:
    mug, tea = stocked("MUG", price=500, BER=9), stocked("TEA", price=300, BER=9)
    products = {"MUG": mug, "TEA": tea}
    reservation = reserve("o-1", {"MUG": 1}, products)
    mug.unit_price, tea.unit_price = 900, 400

    reservation.adjust({"MUG": 2, "TEA": 1}, products)

    assert [(t.sku, t.unit_price) for t in reservation.totals()] == [("MUG", 500), ("TEA", 400)]


def test_items_cannot_change_once_a_parcel_left() -> None:
    reservation, products = split_order()
    reservation.ship(products, "BER")

    refusal = reservation.adjust({"MUG": 1}, products)

    assert refusal == ("not_reserved", [])
    assert at(products["MUG"]) == {"BER": (0, 0), "PAR": (5, 3)}


# -- never oversold, whatever the orders ---------------------------------------------------

orders = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(["MUG", "TEA", "JAM"]), st.integers(1, 6), min_size=1),
        st.sampled_from(["DE", "FR", "ES", None]),
        st.sampled_from(["keep", "ship BER", "ship PAR", "ship all", "release"]),
    ),
    max_size=25,
)
stock_levels = st.fixed_dictionaries(
    {
        sku: st.fixed_dictionaries({code: st.integers(0, 8) for code in ("BER", "PAR", "MAD")})
        for sku in ("MUG", "TEA", "JAM")
    }
)


@settings(max_examples=200, deadline=None)
@given(stock_levels, orders)
def test_no_location_is_ever_oversold_and_holds_equal_the_open_reservations(
    initial: dict[str, dict[str, int]],
    placed: list[tuple[dict[str, int], str | None, str]],
) -> None:
    products = {sku: stocked(sku, **at_locations) for sku, at_locations in initial.items()}
    reservations = []
    for number, (requested, country, then) in enumerate(placed):
        reservation = reserve(f"o-{number}", requested, products, country=country)
        if then.startswith("ship"):
            location = then.removeprefix("ship ")
            if reservation.holds_stock and (
                location == "all" or any(line.location == location for line in reservation.lines)
            ):
                reservation.ship(products, None if location == "all" else location)
        elif then == "release":
            reservation.release(products)
        reservations.append(reservation)
        for sku, product in products.items():
            for code, level in product.levels.items():
                assert 0 <= level.reserved <= level.on_hand, (sku, code)
                held = sum(
                    line.quantity
                    for r in reservations
                    if r.holds_stock
                    for line in r.lines
                    if (line.sku, line.location) == (sku, code) and not line.committed
                )
                assert held == level.reserved, (sku, code)
                shipped = sum(
                    line.quantity
                    for r in reservations
                    for line in r.lines
                    if (line.sku, line.location) == (sku, code) and line.committed
                )
                assert level.on_hand + shipped == initial[sku][code], (sku, code)
