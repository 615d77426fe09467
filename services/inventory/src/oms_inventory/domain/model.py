"""Products, their stock at each location, and reservations of stock for orders.

A product's stock is kept per stock location (a warehouse, a store): `on_hand`,
`reserved` and `available = on_hand - reserved` at each, never below zero there. A
reservation decides which locations send what (`allocation.allocate`), all lines or
none, and holds the stock at those locations; the caller holds row locks on the
stock of every product involved while it decides, so concurrent orders cannot
oversell any (SKU, location).

Goods a customer sends back come in through a `StockReturn` (one per return, booked
once): resellable units go back on hand where they left from, damaged ones are
counted there apart (`damaged`) and never become sellable.

Products, reservations, returns and replenishment requests record what happened to
them in `events`; the unit of work turns those into messages when it commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from oms_contracts.reasons import StatusReason
from oms_inventory.domain.allocation import Allocated, Location, allocate

# Every call that names no location means this one; it ships everywhere.
DEFAULT_LOCATION = "default"
DEFAULT = Location(DEFAULT_LOCATION, None)


class InventoryError(Exception):
    """Something the inventory refuses; `code` says what (the API answers by it:
    see `api/problems.py`)."""

    code = "inventory_error"


class StockError(InventoryError):
    code = "stock_error"


class InsufficientStock(StockError):
    code = "insufficient_stock"


class InvalidQuantity(StockError):
    code = "invalid_quantity"


class OnHandBelowReserved(StockError):
    """A stock count may not drop below what is promised to orders."""

    code = "on_hand_below_reserved"


class GoodsAlreadyShipped(StockError):
    """The order's goods left the warehouse: there is no stock to give back."""

    code = "goods_already_shipped"


class NothingReserved(StockError):
    """Nothing is held for the order (at that location), so nothing can leave the
    warehouse for it."""

    code = "nothing_reserved"


class NotStockedThere(StockError):
    """The product has no stock record at the location (it was never stocked there)."""

    code = "not_stocked_there"

    def __init__(self, sku: str, location: str) -> None:
        super().__init__(f"{sku} is not stocked at {location}")


class MovementReason(StrEnum):
    INITIAL = "initial"
    RESERVE = "reserve"
    RELEASE = "release"
    SHIP = "ship"
    RESTOCK = "restock"
    ADJUSTMENT = "adjustment"
    # Units of a customer return: back on hand, or counted as damaged (never sellable).
    RETURN = "return"
    RETURN_DAMAGED = "return_damaged"


class ReturnCondition(StrEnum):
    RESELLABLE = "resellable"
    DAMAGED = "damaged"


@dataclass(frozen=True)
class StockMovement:
    """One line of the stock ledger: every change of on_hand, reserved or damaged at
    a location, and why. The ledger is append-only; each (product, location)'s
    counters always equal its sums."""

    sku: str
    reason: MovementReason
    on_hand_delta: int = 0
    reserved_delta: int = 0
    order_id: str | None = None
    note: str | None = None
    location: str = DEFAULT_LOCATION
    damaged_delta: int = 0


@dataclass(frozen=True)
class LowStockDetected:
    sku: str
    available: int
    low_stock_threshold: int
    # How much to order in: the product's reorder quantity, else its threshold.
    reorder_quantity: int
    location: str = DEFAULT_LOCATION


@dataclass(frozen=True)
class Restocked:
    sku: str
    quantity: int
    # At the location that received the delivery.
    on_hand: int
    reference: str | None
    location: str = DEFAULT_LOCATION


@dataclass
class StockLevel:
    """A product's stock at one location."""

    location: Location
    on_hand: int = 0
    reserved: int = 0
    # Set when a low-stock alert went out for this location; cleared when its stock
    # recovers, so one crossing of the threshold raises one alert, not one per order.
    low_stock_alerted: bool = False
    # Returned units that came back damaged: kept count of here, never on hand.
    damaged: int = 0

    @property
    def code(self) -> str:
        return self.location.code

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass
class Product:
    """A SKU with its price, its low-stock rule (the same at every location) and
    its stock per location (`levels`, by location code: only where it is stocked)."""

    sku: str
    name: str
    unit_price: int
    currency: str
    low_stock_threshold: int = 0
    reorder_quantity: int = 0
    levels: dict[str, StockLevel] = field(default_factory=dict)
    events: list[LowStockDetected | Restocked] = field(
        default_factory=list, compare=False, repr=False
    )
    movements: list[StockMovement] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def create(
        cls,
        *,
        sku: str,
        name: str,
        unit_price: int,
        currency: str,
        on_hand: int | None = None,
        stock: Iterable[tuple[Location, int]] = (),
        low_stock_threshold: int = 0,
        reorder_quantity: int = 0,
    ) -> Product:
        """A new product with its initial stock: `on_hand` at the `default` location,
        or `stock` as (location, on_hand) pairs."""
        product = cls(sku, name, unit_price, currency, low_stock_threshold, reorder_quantity)
        initial = [(DEFAULT, on_hand)] if on_hand is not None else list(stock)
        for location, quantity in initial:
            product.levels[location.code] = StockLevel(location)
            product._move(MovementReason.INITIAL, location.code, on_hand=quantity)
        product.review_low_stock()
        return product

    # -- totals over every location ----------------------------------------------

    @property
    def on_hand(self) -> int:
        return sum(level.on_hand for level in self.levels.values())

    @property
    def reserved(self) -> int:
        return sum(level.reserved for level in self.levels.values())

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def damaged(self) -> int:
        return sum(level.damaged for level in self.levels.values())

    @property
    def quantity_to_reorder(self) -> int:
        return self.reorder_quantity or max(self.low_stock_threshold, 1)

    def level(self, location: str = DEFAULT_LOCATION) -> StockLevel:
        found = self.levels.get(location)
        if found is None:
            raise NotStockedThere(self.sku, location)
        return found

    def available_at(self, location: str) -> int:
        found = self.levels.get(location)
        return found.available if found is not None else 0

    # -- what orders do to the stock ---------------------------------------------

    def reserve(self, quantity: int, order_id: str, location: str = DEFAULT_LOCATION) -> None:
        if quantity > self.available_at(location):
            raise InsufficientStock(self.sku)
        self._move(MovementReason.RESERVE, location, reserved=quantity, order_id=order_id)
        self._check_low_stock(self.level(location))

    def release(self, quantity: int, order_id: str, location: str = DEFAULT_LOCATION) -> None:
        self._move(MovementReason.RELEASE, location, reserved=-quantity, order_id=order_id)
        self._recover_if_above_threshold(self.level(location))

    def ship(self, quantity: int, order_id: str, location: str = DEFAULT_LOCATION) -> None:
        """Reserved goods left the location."""
        self._move(
            MovementReason.SHIP, location, on_hand=-quantity, reserved=-quantity, order_id=order_id
        )

    def take_back(
        self,
        quantity: int,
        condition: ReturnCondition,
        order_id: str,
        return_id: str,
        location: str = DEFAULT_LOCATION,
    ) -> None:
        """Units of a customer return arrived at `location`. Resellable ones are on
        hand there again (and may end a low-stock alert, so the next crossing alerts
        again); damaged ones are counted there apart and never become sellable."""
        if quantity <= 0:
            raise InvalidQuantity("returned quantity must be positive")
        if condition is ReturnCondition.RESELLABLE:
            self._move(
                MovementReason.RETURN, location, on_hand=quantity, order_id=order_id, note=return_id
            )
            self._recover_if_above_threshold(self.level(location))
        else:
            self._move(
                MovementReason.RETURN_DAMAGED,
                location,
                damaged=quantity,
                order_id=order_id,
                note=return_id,
            )

    # -- what staff and suppliers do ----------------------------------------------

    def restock(
        self, quantity: int, note: str | None = None, location: str = DEFAULT_LOCATION
    ) -> None:
        if quantity <= 0:
            raise InvalidQuantity("restock quantity must be positive")
        self._move(MovementReason.RESTOCK, location, on_hand=quantity, note=note)
        self._recover_if_above_threshold(self.level(location))

    def receive_delivery(
        self, quantity: int, reference: str | None, location: str = DEFAULT_LOCATION
    ) -> None:
        """A supplier's delivery arrived at `location`: restock there, and say so."""
        self.restock(quantity, note=reference, location=location)
        level = self.level(location)
        self.events.append(Restocked(self.sku, quantity, level.on_hand, reference, location))

    def update(
        self,
        *,
        name: str | None = None,
        unit_price: int | None = None,
        low_stock_threshold: int | None = None,
        reorder_quantity: int | None = None,
        on_hand: int | None = None,
        location: str = DEFAULT_LOCATION,
    ) -> None:
        """Admin edits. `on_hand` is a manual count correction at `location`; it may
        not drop below what is promised to orders there."""
        if on_hand is not None:
            level = self.level(location)
            if on_hand < level.reserved:
                raise OnHandBelowReserved(
                    f"on_hand cannot go below the {level.reserved} units reserved for orders"
                    + ("" if location == DEFAULT_LOCATION else f" at {location}")
                )
        if name is not None:
            self.name = name
        if unit_price is not None:
            self.unit_price = unit_price
        if low_stock_threshold is not None:
            self.low_stock_threshold = low_stock_threshold
        if reorder_quantity is not None:
            self.reorder_quantity = reorder_quantity
        if on_hand is not None and on_hand != self.level(location).on_hand:
            self._move(
                MovementReason.ADJUSTMENT,
                location,
                on_hand=on_hand - self.level(location).on_hand,
                note="manual count correction",
            )
        self.review_low_stock()

    def review_low_stock(self) -> None:
        """Bring every location's alert in line with its stock, whatever changed it
        (a threshold edit, a change made behind the service's back): also the
        periodic check."""
        for level in self.levels.values():
            self._recover_if_above_threshold(level)
            self._check_low_stock(level)

    # -- the rule behind alerts -----------------------------------------------------

    def _alert_due(self, level: StockLevel) -> bool:
        # A threshold of 0 means "do not watch this product".
        return self.low_stock_threshold > 0 and level.available <= self.low_stock_threshold

    def _check_low_stock(self, level: StockLevel) -> None:
        if self._alert_due(level) and not level.low_stock_alerted:
            level.low_stock_alerted = True
            self.events.append(
                LowStockDetected(
                    self.sku,
                    level.available,
                    self.low_stock_threshold,
                    self.quantity_to_reorder,
                    level.code,
                )
            )

    def _recover_if_above_threshold(self, level: StockLevel) -> None:
        if not self._alert_due(level):
            level.low_stock_alerted = False

    def _move(
        self,
        reason: MovementReason,
        location: str,
        *,
        on_hand: int = 0,
        reserved: int = 0,
        damaged: int = 0,
        order_id: str | None = None,
        note: str | None = None,
    ) -> None:
        level = self.level(location)
        level.on_hand += on_hand
        level.reserved += reserved
        level.damaged += damaged
        self.movements.append(
            StockMovement(self.sku, reason, on_hand, reserved, order_id, note, location, damaged)
        )


class ReservationStatus(StrEnum):
    # Some lines are still held (others may have left already).
    RESERVED = "reserved"
    REFUSED = "refused"
    # What was still held was given back (lines that left before stay committed).
    RELEASED = "released"
    # Every line left its location.
    COMMITTED = "committed"
    # Held too long without being shipped: released by the inventory itself.
    EXPIRED = "expired"
    # Nothing was ever asked for this order (never stored).
    ABSENT = "absent"


@dataclass(frozen=True)
class ReservedLine:
    """What a reservation holds of one SKU at one location."""

    sku: str
    quantity: int
    unit_price: int
    location: str = DEFAULT_LOCATION
    # The goods left the location (the parcel was dispatched).
    committed: bool = False


@dataclass(frozen=True)
class PricedTotal:
    """All of a reservation's units of one SKU, whichever locations hold them."""

    sku: str
    quantity: int
    unit_price: int


@dataclass(frozen=True)
class AllocatedParcel:
    """What one location sends of an order: SKU -> quantity."""

    location: Location
    lines: tuple[tuple[str, int], ...]


# -- what happened to a reservation --------------------------------------------------


@dataclass(frozen=True)
class ReservationEvent:
    order_id: str


@dataclass(frozen=True)
class StockReserved(ReservationEvent):
    lines: tuple[PricedTotal, ...]
    currency: str
    parcels: tuple[AllocatedParcel, ...] = ()


@dataclass(frozen=True)
class StockRefused(ReservationEvent):
    reason: str
    skus: tuple[str, ...]


@dataclass(frozen=True)
class StockReleased(ReservationEvent):
    pass


@dataclass(frozen=True)
class StockShipped(ReservationEvent):
    # SKU -> quantity that left (per SKU totals over the locations concerned).
    lines: tuple[tuple[str, int], ...]
    # The location whose parcel left (None: everything that was held).
    location: str | None = None
    fulfillment_id: str | None = None


@dataclass(frozen=True)
class ReservationAdjusted(ReservationEvent):
    lines: tuple[PricedTotal, ...]
    currency: str
    parcels: tuple[AllocatedParcel, ...] = ()


@dataclass(frozen=True)
class AdjustmentRefused(ReservationEvent):
    reason: str
    skus: tuple[str, ...]


@dataclass(frozen=True)
class ReservationExpired(ReservationEvent):
    pass


Products = Mapping[str, Product]


@dataclass
class Reservation:
    """What an order holds, where. Kept after release/refusal so a re-sent or late
    command for the same order gets the same answer instead of reserving again.

    `lines` hold each SKU per location (a line split over two locations is two
    lines); `locations` are the allocated locations as they were when allocated,
    preferred first (the parcels keep that order)."""

    order_id: str
    status: ReservationStatus
    lines: list[ReservedLine] = field(default_factory=list)
    currency: str | None = None
    refusal_reason: str | None = None
    refused_skus: list[str] = field(default_factory=list)
    expires_at: datetime | None = None
    locations: list[Location] = field(default_factory=list)
    # The destination the allocation served (None: not told, every location).
    country: str | None = None
    events: list[ReservationEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def absent(cls, order_id: str) -> Reservation:
        """The reservation of an order nothing was asked for yet."""
        return cls(order_id, ReservationStatus.ABSENT)

    @property
    def exists(self) -> bool:
        return self.status is not ReservationStatus.ABSENT

    @property
    def holds_stock(self) -> bool:
        return self.status is ReservationStatus.RESERVED

    @property
    def held_skus(self) -> list[str]:
        """The products whose stock the reservation holds (and would change)."""
        if not self.holds_stock:
            return []
        return sorted({line.sku for line in self.lines if not line.committed})

    @property
    def anything_committed(self) -> bool:
        return any(line.committed for line in self.lines)

    # -- what the order saga asks ------------------------------------------------

    def request(
        self,
        requested: Mapping[str, int],
        products: Products,
        expires_at: datetime,
        country: str | None = None,
    ) -> None:
        """Reserve `requested` (all or nothing) from the locations that ship to
        `country`, the first time it is asked; a repeated request gets the answer
        the first one got."""
        if self.status is ReservationStatus.ABSENT:
            made = reserve(self.order_id, requested, products, expires_at, country)
            self.status, self.lines, self.currency = made.status, made.lines, made.currency
            self.refusal_reason, self.refused_skus = made.refusal_reason, made.refused_skus
            self.expires_at, self.locations = made.expires_at, made.locations
            self.country = made.country
        self.events.append(self._outcome())

    def cancel(self, products: Products) -> None:
        """The order was called off: give back what is still held, at every
        location. One that arrives first is remembered, so a late request for the
        cancelled order is refused."""
        if self.status is ReservationStatus.COMMITTED:
            raise GoodsAlreadyShipped(self.order_id)
        if self.status is ReservationStatus.ABSENT:
            self.status = ReservationStatus.RELEASED
        self.release(products)
        self.events.append(StockReleased(self.order_id))

    def ship(
        self,
        products: Products,
        location: str | None = None,
        fulfillment_id: str | None = None,
    ) -> None:
        """A parcel left: turn what is held at its `location` (None: everything
        still held) into a stock decrement there, once; a repeat is answered again."""
        if location is None:
            if self.status not in (ReservationStatus.RESERVED, ReservationStatus.COMMITTED):
                raise NothingReserved(self.order_id)
        else:
            there = [line for line in self.lines if line.location == location]
            left_already = bool(there) and all(line.committed for line in there)
            if not there or not (self.holds_stock or left_already):
                raise NothingReserved(f"{self.order_id} at {location}")
        self.commit(products, location)
        shipped = _totals(
            line for line in self.lines if line.committed and location in (None, line.location)
        )
        self.events.append(
            StockShipped(
                self.order_id,
                tuple((total.sku, total.quantity) for total in shipped),
                location,
                fulfillment_id,
            )
        )

    def change_lines(
        self, requested: Mapping[str, int], products: Products, country: str | None = None
    ) -> None:
        """The order's items changed: hold `requested` instead, all or nothing."""
        refusal = self.adjust(requested, products, country)
        if refusal is None:
            self.events.append(
                ReservationAdjusted(
                    self.order_id, self.totals(), self.currency or "", self.parcels()
                )
            )
        else:
            reason, skus = refusal
            self.events.append(AdjustmentRefused(self.order_id, reason, tuple(skus)))

    # -- the stock itself --------------------------------------------------------

    def release(self, products: Products) -> bool:
        """Give back what is still held at every location; False if there was
        nothing (left) to release. Lines that left already stay committed."""
        if self.status is not ReservationStatus.RESERVED:
            return False
        for line in self.lines:
            if not line.committed:
                products[line.sku].release(line.quantity, self.order_id, line.location)
        self.status = ReservationStatus.RELEASED
        return True

    def commit(self, products: Products, location: str | None = None) -> bool:
        """Turn what is held at `location` (None: everywhere) into a stock decrement
        there; False if nothing is held there."""
        if self.status is not ReservationStatus.RESERVED:
            return False
        due = [
            index
            for index, line in enumerate(self.lines)
            if not line.committed and location in (None, line.location)
        ]
        if not due:
            return False
        for index in due:
            line = self.lines[index]
            products[line.sku].ship(line.quantity, self.order_id, line.location)
            self.lines[index] = replace(line, committed=True)
        if all(line.committed for line in self.lines):
            self.status = ReservationStatus.COMMITTED
        return True

    def adjust(
        self, requested: Mapping[str, int], products: Products, country: str | None = None
    ) -> tuple[str, list[str]] | None:
        """Hold `requested` instead of the current lines, all or nothing, allocated
        afresh (what the order holds counts as available to it). Returns the refusal
        (reason, SKUs), or None when adjusted. SKUs kept keep their price; new ones
        take today's. Only while nothing has left a location."""
        if self.status is not ReservationStatus.RESERVED or self.anything_committed:
            return StatusReason.NOT_RESERVED, []
        unknown = sorted(sku for sku in requested if sku not in products)
        if unknown:
            return StatusReason.UNKNOWN_SKU, unknown
        if any(products[sku].currency != self.currency for sku in requested):
            return StatusReason.CURRENCY_MISMATCH, sorted(requested)
        country = country if country is not None else self.country
        held: dict[tuple[str, str], int] = {}
        for line in self.lines:
            key = (line.sku, line.location)
            held[key] = held.get(key, 0) + line.quantity
        allocated = _allocate(requested, products, country, held)
        if isinstance(allocated, list):
            return StatusReason.OUT_OF_STOCK, allocated
        allocation, locations = allocated
        wanted = {
            (sku, parcel.location): quantity
            for parcel in allocation.parcels
            for sku, quantity in parcel.lines
        }
        # Releases first, so a location's low-stock alert sees where it ends up.
        for (sku, location), before in sorted(held.items()):
            change = wanted.get((sku, location), 0) - before
            if change < 0:
                products[sku].release(-change, self.order_id, location)
        for (sku, location), after in sorted(wanted.items()):
            change = after - held.get((sku, location), 0)
            if change > 0:
                products[sku].reserve(change, self.order_id, location)
        prices = {line.sku: line.unit_price for line in self.lines}
        self.lines = _lines_of(allocation, requested, products, prices)
        self.locations = [locations[parcel.location] for parcel in allocation.parcels]
        self.country = country
        return None

    def expire(self, products: Products) -> bool:
        """Release a reservation that outlived its time limit, and tell the saga."""
        if not self.release(products):
            return False
        self.status = ReservationStatus.EXPIRED
        self.events.append(ReservationExpired(self.order_id))
        return True

    # -- how it reads ------------------------------------------------------------

    def totals(self) -> tuple[PricedTotal, ...]:
        """Per SKU, everything the order holds or held, whichever locations."""
        return _totals(self.lines)

    def parcels(self) -> tuple[AllocatedParcel, ...]:
        """What each allocated location sends, preferred location first."""
        known = {location.code: location for location in self.locations}
        order = [location.code for location in self.locations]
        order += sorted({line.location for line in self.lines} - set(order))
        return tuple(
            AllocatedParcel(
                known.get(code, Location(code, None)),
                tuple((line.sku, line.quantity) for line in self.lines if line.location == code),
            )
            for code in order
            if any(line.location == code for line in self.lines)
        )

    def _outcome(self) -> StockReserved | StockRefused:
        """The answer to a reservation request, as things stand."""
        match self.status:
            case ReservationStatus.RESERVED | ReservationStatus.COMMITTED:
                return StockReserved(
                    self.order_id, self.totals(), self.currency or "", self.parcels()
                )
            case ReservationStatus.RELEASED:
                return StockRefused(self.order_id, StatusReason.ORDER_CANCELLED, ())
            case ReservationStatus.EXPIRED:
                return StockRefused(self.order_id, StatusReason.RESERVATION_EXPIRED, ())
            case _:
                return StockRefused(
                    self.order_id,
                    self.refusal_reason or StatusReason.OUT_OF_STOCK,
                    tuple(self.refused_skus),
                )


def reserve(
    order_id: str,
    requested: Mapping[str, int],
    products: Products,
    expires_at: datetime | None = None,
    country: str | None = None,
) -> Reservation:
    """All or nothing: either every line is reserved, at the locations the
    allocation rule picks among those that ship to `country`, or nothing is and the
    reservation is refused naming the SKUs that could not be served."""
    unknown = sorted(sku for sku in requested if sku not in products)
    if unknown:
        return _refused(order_id, StatusReason.UNKNOWN_SKU, unknown)
    currencies = {products[sku].currency for sku in requested}
    if len(currencies) > 1:
        return _refused(order_id, StatusReason.CURRENCY_MISMATCH, sorted(requested))
    allocated = _allocate(requested, products, country)
    if isinstance(allocated, list):
        return _refused(order_id, StatusReason.OUT_OF_STOCK, allocated)
    allocation, locations = allocated
    for parcel in allocation.parcels:
        for sku, quantity in parcel.lines:
            products[sku].reserve(quantity, order_id, parcel.location)
    return Reservation(
        order_id=order_id,
        status=ReservationStatus.RESERVED,
        lines=_lines_of(allocation, requested, products),
        currency=currencies.pop(),
        expires_at=expires_at,
        locations=[locations[parcel.location] for parcel in allocation.parcels],
        country=country,
    )


def release_nothing(order_id: str) -> Reservation:
    """A release that arrived before (or instead of) the reservation: remember it, so
    a late reservation request for the cancelled order is refused."""
    return Reservation(order_id=order_id, status=ReservationStatus.RELEASED)


def _allocate(
    requested: Mapping[str, int],
    products: Products,
    country: str | None,
    held: Mapping[tuple[str, str], int] | None = None,
) -> tuple[Allocated, dict[str, Location]] | list[str]:
    """The allocation over the locations the products are stocked at (and those
    locations by code), or the SKUs it cannot fill. `held`: what the order holds
    already, available to it again."""
    locations: dict[str, Location] = {}
    available: dict[tuple[str, str], int] = dict(held or {})
    for sku in requested:
        for level in products[sku].levels.values():
            locations.setdefault(level.code, level.location)
            key = (sku, level.code)
            available[key] = available.get(key, 0) + level.available
    result = allocate(requested, country, locations.values(), available)
    if isinstance(result, Allocated):
        return result, locations
    return list(result.skus)


def _lines_of(
    allocation: Allocated,
    requested: Mapping[str, int],
    products: Products,
    prices: Mapping[str, int] | None = None,
) -> list[ReservedLine]:
    """The reservation's lines: in the order's SKU order, each SKU's locations in
    the allocation's (preferred first). `prices`: SKUs that keep the price held."""
    return [
        ReservedLine(
            sku, quantity, (prices or {}).get(sku, products[sku].unit_price), parcel.location
        )
        for sku in requested
        for parcel in allocation.parcels
        for line_sku, quantity in parcel.lines
        if line_sku == sku
    ]


def _totals(lines: Iterable[ReservedLine]) -> tuple[PricedTotal, ...]:
    quantities: dict[str, int] = {}
    prices: dict[str, int] = {}
    for line in lines:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
        prices.setdefault(line.sku, line.unit_price)
    return tuple(PricedTotal(sku, quantity, prices[sku]) for sku, quantity in quantities.items())


def _refused(order_id: str, reason: str, skus: list[str]) -> Reservation:
    return Reservation(
        order_id=order_id,
        status=ReservationStatus.REFUSED,
        refusal_reason=reason,
        refused_skus=skus,
    )


# -- customer returns --------------------------------------------------------------


@dataclass(frozen=True)
class ReturnedUnits:
    """Units of one SKU a return brought back to a location, in one condition."""

    sku: str
    quantity: int
    condition: ReturnCondition
    location: str = DEFAULT_LOCATION


@dataclass(frozen=True)
class StockReturned:
    order_id: str
    return_id: str
    lines: tuple[ReturnedUnits, ...]


@dataclass
class StockReturn:
    """The goods of one customer return, booked into the stock of the locations
    they came back to: once per return, however often it is asked."""

    return_id: str
    order_id: str
    lines: tuple[ReturnedUnits, ...] = ()
    # False: nothing was booked for the return yet (such a one is never stored).
    booked: bool = False
    events: list[StockReturned] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def absent(cls, return_id: str, order_id: str) -> StockReturn:
        """The booking of a return nothing was booked for yet."""
        return cls(return_id, order_id)

    def book(self, lines: Sequence[ReturnedUnits], products: Products) -> None:
        """Book `lines` at their locations, the first time; a repeat books nothing
        more and answers what the first booking booked. Each line's product must be
        in `products`, stocked at the line's location."""
        if not self.booked:
            if not lines or any(line.quantity <= 0 for line in lines):
                raise InvalidQuantity("a return books at least one unit per line")
            for line in lines:
                products[line.sku].take_back(
                    line.quantity, line.condition, self.order_id, self.return_id, line.location
                )
            self.lines, self.booked = tuple(lines), True
        self.events.append(StockReturned(self.order_id, self.return_id, self.lines))


# -- replenishment -----------------------------------------------------------------


@dataclass(frozen=True)
class ReplenishmentRequested:
    sku: str
    quantity: int
    location: str = DEFAULT_LOCATION


@dataclass
class Replenishment:
    """A request to order stock in for one location, opened when the product runs
    low there; at most one is open per SKU and location (a delivery there closes it)."""

    sku: str
    quantity: int
    available_at_request: int
    location: str = DEFAULT_LOCATION
    events: list[ReplenishmentRequested] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def for_low_stock(cls, alert: LowStockDetected) -> Replenishment:
        replenishment = cls(alert.sku, alert.reorder_quantity, alert.available, alert.location)
        replenishment.events.append(
            ReplenishmentRequested(alert.sku, alert.reorder_quantity, alert.location)
        )
        return replenishment
