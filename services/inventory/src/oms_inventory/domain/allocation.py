"""Which stock locations fill an order: the allocation rule, plain Python.

The rule (the contract's "Allocation"): only locations that ship to the order's
country count; one location that can fill the whole order is preferred, then the
fewest locations, then the preferred ones (lower `priority`); a line is split across
locations only when no single eligible location holds all of it. All lines or none.

Finding the fewest locations is a set cover, which is hard in general but small here:
a shop has a handful of warehouses, and only those holding some of the order's SKUs
take part. The search tries every set of one location, then of two, and so on, and
stops at the first size that works; past `MAX_SETS_TRIED` sets it settles for a
greedy cover (still never oversold, possibly one parcel more than the optimum).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

MAX_SETS_TRIED = 20_000


@dataclass(frozen=True)
class Location:
    code: str
    # Where it is (None: not recorded, as for the `default` location).
    country: str | None
    priority: int = 100
    # ISO countries it ships to; None ships everywhere.
    serves: frozenset[str] | None = None

    def ships_to(self, country: str | None) -> bool:
        """None: the destination is not known (an order from before countries were
        sent), and every location takes part."""
        return self.serves is None or country is None or country in self.serves


@dataclass(frozen=True)
class Parcel:
    """What one location sends: SKU -> quantity."""

    location: str
    lines: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Allocated:
    parcels: tuple[Parcel, ...]

    def quantity(self, sku: str, location: str) -> int:
        return sum(
            quantity
            for parcel in self.parcels
            if parcel.location == location
            for line_sku, quantity in parcel.lines
            if line_sku == sku
        )


@dataclass(frozen=True)
class Unfillable:
    """No eligible locations hold enough of these SKUs between them."""

    skus: tuple[str, ...]


# (sku, location code) -> units available to reserve there.
Availability = Mapping[tuple[str, str], int]
_Stock = Callable[[str, "Location"], int]
_Fills = Callable[[Sequence["Location"]], bool]


def allocate(
    requested: Mapping[str, int],
    country: str | None,
    locations: Iterable[Location],
    available: Availability,
) -> Allocated | Unfillable:
    eligible = sorted(
        (location for location in locations if location.ships_to(country)),
        key=_preference,
    )

    def stock(sku: str, location: Location) -> int:
        return max(0, available.get((sku, location.code), 0))

    short = sorted(
        sku
        for sku, quantity in requested.items()
        if sum(stock(sku, location) for location in eligible) < quantity
    )
    if short:
        return Unfillable(tuple(short))
    # Lines some eligible location holds whole are never split.
    whole = {
        sku: frozenset(location.code for location in eligible if stock(sku, location) >= quantity)
        for sku, quantity in requested.items()
    }
    candidates = [
        location for location in eligible if any(stock(sku, location) > 0 for sku in requested)
    ]

    def fills(chosen: Sequence[Location]) -> bool:
        codes = {location.code for location in chosen}
        for sku, quantity in requested.items():
            if whole[sku]:
                if not whole[sku] & codes:
                    return False
            elif sum(stock(sku, location) for location in chosen) < quantity:
                return False
        return True

    chosen = _fewest(candidates, fills) or _greedy(candidates, requested, whole, stock)
    return Allocated(_parcels(chosen, requested, whole, stock))


def _preference(location: Location) -> tuple[int, str]:
    return (location.priority, location.code)


def _fewest(candidates: list[Location], fills: _Fills) -> tuple[Location, ...] | None:
    tried = 0
    for size in range(1, len(candidates) + 1):
        best: tuple[Location, ...] | None = None
        for chosen in itertools.combinations(candidates, size):
            tried += 1
            if tried > MAX_SETS_TRIED:
                return best
            if fills(chosen) and (best is None or _rank(chosen) < _rank(best)):
                best = chosen
        if best is not None:
            return best
    return None


def _rank(chosen: Sequence[Location]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Among sets of the same size, the one whose priorities are best."""
    return (
        tuple(sorted(location.priority for location in chosen)),
        tuple(sorted(location.code for location in chosen)),
    )


def _greedy(
    candidates: list[Location],
    requested: Mapping[str, int],
    whole: Mapping[str, frozenset[str]],
    stock: _Stock,
) -> tuple[Location, ...]:
    """Too many locations to try every set: take, each time, the location that fills
    the most of what is still missing (ties to the preferred one). A line some
    location holds whole counts only where it is held whole."""
    missing = dict(requested)

    def fills_of(location: Location) -> dict[str, int]:
        return {
            sku: (left if location.code in whole[sku] else 0)
            if whole[sku]
            else min(stock(sku, location), left)
            for sku, left in missing.items()
        }

    chosen: list[Location] = []
    while any(missing.values()):
        remaining = [location for location in candidates if location not in chosen]
        best = max(remaining, key=lambda loc: (sum(fills_of(loc).values()), -loc.priority))
        for sku, filled in fills_of(best).items():
            missing[sku] -= filled
        chosen.append(best)
    return tuple(sorted(chosen, key=_preference))


def _parcels(
    chosen: Sequence[Location],
    requested: Mapping[str, int],
    whole: Mapping[str, frozenset[str]],
    stock: _Stock,
) -> tuple[Parcel, ...]:
    ordered = sorted(chosen, key=_preference)
    lines: dict[str, list[tuple[str, int]]] = {location.code: [] for location in ordered}
    for sku, quantity in requested.items():
        holder = next((loc for loc in ordered if loc.code in whole[sku]), None)
        if holder is not None:
            lines[holder.code].append((sku, quantity))
            continue
        left = quantity
        for location in ordered:
            take = min(stock(sku, location), left)
            if take > 0:
                lines[location.code].append((sku, take))
                left -= take
    return tuple(
        Parcel(location.code, tuple(lines[location.code]))
        for location in ordered
        if lines[location.code]
    )
