"""Which locations fill an order (pure allocation rule, no database)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from oms_inventory.domain.allocation import Allocated, Location, Unfillable, allocate

BERLIN = Location("BER", "DE", priority=1)
PARIS = Location("PAR", "FR", priority=2)
MADRID = Location("MAD", "ES", priority=3, serves=frozenset({"ES", "PT"}))


def parcels(result: Allocated | Unfillable) -> dict[str, dict[str, int]]:
    assert isinstance(result, Allocated), result
    return {parcel.location: dict(parcel.lines) for parcel in result.parcels}


def test_one_location_that_holds_the_whole_order_ships_it_alone() -> None:
    stock = {("MUG", "BER"): 5, ("MUG", "PAR"): 5, ("TEA", "PAR"): 5}

    result = allocate({"MUG": 2, "TEA": 1}, "DE", [BERLIN, PARIS], stock)

    assert parcels(result) == {"PAR": {"MUG": 2, "TEA": 1}}


def test_of_several_locations_that_hold_the_whole_order_the_preferred_one_ships_it() -> None:
    stock = {("MUG", "BER"): 5, ("MUG", "PAR"): 5}

    assert parcels(allocate({"MUG": 2}, "DE", [PARIS, BERLIN], stock)) == {"BER": {"MUG": 2}}


def test_an_order_no_single_location_holds_ships_from_the_fewest_locations() -> None:
    lisbon = Location("LIS", "PT", priority=0)
    stock = {
        ("MUG", "LIS"): 1,
        ("TEA", "LIS"): 1,
        ("MUG", "BER"): 3,
        ("TEA", "PAR"): 3,
        ("JAM", "PAR"): 3,
        ("JAM", "BER"): 3,
    }

    result = allocate({"MUG": 2, "TEA": 2, "JAM": 1}, "DE", [lisbon, BERLIN, PARIS], stock)

    # Lisbon is preferred but holds too little of anything: Berlin + Paris make two.
    assert parcels(result) == {"BER": {"MUG": 2, "JAM": 1}, "PAR": {"TEA": 2}}


def test_a_line_is_split_only_when_no_single_location_holds_all_of_it() -> None:
    stock = {("MUG", "BER"): 25, ("MUG", "PAR"): 25}

    assert parcels(allocate({"MUG": 30}, "DE", [BERLIN, PARIS], stock)) == {
        "BER": {"MUG": 25},
        "PAR": {"MUG": 5},
    }
    assert parcels(allocate({"MUG": 20}, "DE", [BERLIN, PARIS], stock)) == {"BER": {"MUG": 20}}


def test_a_line_one_chosen_location_holds_whole_is_not_split_over_a_preferred_one() -> None:
    # Berlin is needed for the tea and preferred, but holds only part of the mugs;
    # Paris holds all of them, so the mugs come from Paris alone.
    stock = {("MUG", "BER"): 3, ("MUG", "PAR"): 5, ("TEA", "BER"): 1}

    assert parcels(allocate({"MUG": 4, "TEA": 1}, "DE", [BERLIN, PARIS], stock)) == {
        "BER": {"TEA": 1},
        "PAR": {"MUG": 4},
    }


def test_locations_that_do_not_ship_to_the_country_take_no_part() -> None:
    stock = {("MUG", "MAD"): 10, ("MUG", "BER"): 1}

    assert allocate({"MUG": 2}, "DE", [BERLIN, MADRID], stock) == Unfillable(("MUG",))
    assert parcels(allocate({"MUG": 2}, "PT", [BERLIN, MADRID], stock)) == {"MAD": {"MUG": 2}}


def test_an_order_the_eligible_locations_cannot_fill_names_every_short_sku() -> None:
    stock = {("MUG", "BER"): 1, ("TEA", "BER"): 5}

    result = allocate({"MUG": 2, "TEA": 5, "JAM": 1}, "DE", [BERLIN], stock)

    assert result == Unfillable(("JAM", "MUG"))


def test_negative_or_missing_stock_counts_as_none() -> None:
    assert allocate({"MUG": 1}, "DE", [BERLIN], {("MUG", "BER"): -3}) == Unfillable(("MUG",))


# -- properties ----------------------------------------------------------------------

CODES = ["A", "B", "C", "D", "E"]
SKUS = ["S1", "S2", "S3"]
COUNTRIES = ["DE", "FR"]

locations_strategy = st.lists(
    st.builds(
        Location,
        code=st.sampled_from(CODES),
        country=st.sampled_from(COUNTRIES),
        priority=st.integers(0, 3),
        serves=st.one_of(st.none(), st.frozensets(st.sampled_from(COUNTRIES), min_size=1)),
    ),
    max_size=5,
    unique_by=lambda location: location.code,
)
stock_strategy = st.dictionaries(
    st.tuples(st.sampled_from(SKUS), st.sampled_from(CODES)), st.integers(0, 6)
)
request_strategy = st.dictionaries(st.sampled_from(SKUS), st.integers(1, 8), min_size=1)


def _can_serve(
    chosen: tuple[Location, ...],
    requested: dict[str, int],
    eligible: list[Location],
    stock: dict[tuple[str, str], int],
) -> bool:
    """Whether `chosen` could fill the order under the no-needless-split rule."""
    for sku, quantity in requested.items():
        holders = [loc for loc in eligible if stock.get((sku, loc.code), 0) >= quantity]
        if holders:
            if not any(loc in chosen for loc in holders):
                return False
        elif sum(stock.get((sku, loc.code), 0) for loc in chosen) < quantity:
            return False
    return True


@settings(max_examples=400, deadline=None)
@given(locations_strategy, stock_strategy, request_strategy, st.sampled_from(COUNTRIES))
def test_allocation_never_exceeds_stock_fills_every_line_and_uses_the_fewest_locations(
    locations: list[Location],
    stock: dict[tuple[str, str], int],
    requested: dict[str, int],
    country: str,
) -> None:
    eligible = [loc for loc in locations if loc.ships_to(country)]
    result = allocate(requested, country, locations, stock)

    if isinstance(result, Unfillable):
        # Refused exactly when the eligible locations hold too little between them.
        assert set(result.skus) == {
            sku
            for sku, quantity in requested.items()
            if sum(stock.get((sku, loc.code), 0) for loc in eligible) < quantity
        }
        assert result.skus
        return
    used = [parcel.location for parcel in result.parcels]
    assert len(used) == len(set(used))
    assert set(used) <= {loc.code for loc in eligible}
    for sku, quantity in requested.items():
        assert sum(result.quantity(sku, code) for code in used) == quantity
        for code in used:
            assert result.quantity(sku, code) <= stock.get((sku, code), 0)
        held_whole = any(stock.get((sku, loc.code), 0) >= quantity for loc in eligible)
        if held_whole:
            assert sum(1 for code in used if result.quantity(sku, code) > 0) == 1
    for parcel in result.parcels:
        assert parcel.lines and all(quantity > 0 for _, quantity in parcel.lines)
    fewer_would_do = any(
        _can_serve(chosen, requested, eligible, stock)
        for size in range(1, len(used))
        for chosen in itertools.combinations(eligible, size)
    )
    assert not fewer_would_do
