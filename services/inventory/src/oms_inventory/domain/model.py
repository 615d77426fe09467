"""Products, their stock, and reservations of stock for orders.

`available = on_hand - reserved` never goes below zero: a reservation is granted
only if every line fits (all or nothing), and the caller holds row locks on every
product involved while it decides, so concurrent orders cannot oversell.

Products, reservations and replenishment requests record what happened to them in
`events`; the unit of work turns those into messages when it commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from oms_contracts.reasons import StatusReason


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
    """Nothing is held for the order, so nothing can leave the warehouse for it."""

    code = "nothing_reserved"


class MovementReason(StrEnum):
    INITIAL = "initial"
    RESERVE = "reserve"
    RELEASE = "release"
    SHIP = "ship"
    RESTOCK = "restock"
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True)
class StockMovement:
    """One line of the stock ledger: every change of on_hand or reserved, and why.
    The ledger is append-only; a product's counters always equal its sums."""

    sku: str
    reason: MovementReason
    on_hand_delta: int = 0
    reserved_delta: int = 0
    order_id: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class LowStockDetected:
    sku: str
    available: int
    low_stock_threshold: int
    # How much to order in: the product's reorder quantity, else its threshold.
    reorder_quantity: int


@dataclass(frozen=True)
class Restocked:
    sku: str
    quantity: int
    on_hand: int
    reference: str | None


@dataclass
class Product:
    sku: str
    name: str
    unit_price: int
    currency: str
    on_hand: int
    reserved: int = 0
    low_stock_threshold: int = 0
    reorder_quantity: int = 0
    # Set when a low-stock alert went out; cleared when stock recovers, so one
    # crossing of the threshold raises one alert, not one per order.
    low_stock_alerted: bool = False
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
        on_hand: int,
        low_stock_threshold: int = 0,
        reorder_quantity: int = 0,
    ) -> Product:
        product = cls(sku, name, unit_price, currency, 0, 0, low_stock_threshold, reorder_quantity)
        product._move(MovementReason.INITIAL, on_hand=on_hand)
        product.check_low_stock()
        return product

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def is_low(self) -> bool:
        return self.available <= self.low_stock_threshold

    @property
    def quantity_to_reorder(self) -> int:
        return self.reorder_quantity or max(self.low_stock_threshold, 1)

    @property
    def _alert_due(self) -> bool:
        # A threshold of 0 means "do not watch this product".
        return self.low_stock_threshold > 0 and self.is_low

    def reserve(self, quantity: int, order_id: str) -> None:
        if quantity > self.available:
            raise InsufficientStock(self.sku)
        self._move(MovementReason.RESERVE, reserved=quantity, order_id=order_id)
        self.check_low_stock()

    def release(self, quantity: int, order_id: str) -> None:
        self._move(MovementReason.RELEASE, reserved=-quantity, order_id=order_id)
        self._recover_if_above_threshold()

    def ship(self, quantity: int, order_id: str) -> None:
        """Reserved goods left the warehouse."""
        self._move(MovementReason.SHIP, on_hand=-quantity, reserved=-quantity, order_id=order_id)

    def restock(self, quantity: int, note: str | None = None) -> None:
        if quantity <= 0:
            raise InvalidQuantity("restock quantity must be positive")
        self._move(MovementReason.RESTOCK, on_hand=quantity, note=note)
        self._recover_if_above_threshold()

    def receive_delivery(self, quantity: int, reference: str | None) -> None:
        """A supplier's delivery arrived: restock, and say so."""
        self.restock(quantity, note=reference)
        self.events.append(Restocked(self.sku, quantity, self.on_hand, reference))

    def update(
        self,
        *,
        name: str | None = None,
        unit_price: int | None = None,
        low_stock_threshold: int | None = None,
        reorder_quantity: int | None = None,
        on_hand: int | None = None,
    ) -> None:
        """Admin edits. `on_hand` is a manual count correction; it may not drop below
        what is promised to orders."""
        if on_hand is not None and on_hand < self.reserved:
            raise OnHandBelowReserved(
                f"on_hand cannot go below the {self.reserved} units reserved for orders"
            )
        if name is not None:
            self.name = name
        if unit_price is not None:
            self.unit_price = unit_price
        if low_stock_threshold is not None:
            self.low_stock_threshold = low_stock_threshold
        if reorder_quantity is not None:
            self.reorder_quantity = reorder_quantity
        if on_hand is not None and on_hand != self.on_hand:
            self._move(
                MovementReason.ADJUSTMENT,
                on_hand=on_hand - self.on_hand,
                note="manual count correction",
            )
        self._recover_if_above_threshold()
        self.check_low_stock()

    def review_low_stock(self) -> None:
        """The periodic check: bring the alert in line with the stock, whatever
        changed it (a threshold edit, a crash between... nothing is assumed)."""
        self._recover_if_above_threshold()
        self.check_low_stock()

    def check_low_stock(self) -> None:
        if self._alert_due and not self.low_stock_alerted:
            self.low_stock_alerted = True
            self.events.append(
                LowStockDetected(
                    self.sku, self.available, self.low_stock_threshold, self.quantity_to_reorder
                )
            )

    def _move(
        self,
        reason: MovementReason,
        *,
        on_hand: int = 0,
        reserved: int = 0,
        order_id: str | None = None,
        note: str | None = None,
    ) -> None:
        self.on_hand += on_hand
        self.reserved += reserved
        self.movements.append(StockMovement(self.sku, reason, on_hand, reserved, order_id, note))

    def _recover_if_above_threshold(self) -> None:
        if not self._alert_due:
            self.low_stock_alerted = False


class ReservationStatus(StrEnum):
    RESERVED = "reserved"
    REFUSED = "refused"
    RELEASED = "released"
    COMMITTED = "committed"
    # Held too long without being shipped: released by the inventory itself.
    EXPIRED = "expired"
    # Nothing was ever asked for this order (never stored).
    ABSENT = "absent"


@dataclass(frozen=True)
class ReservedLine:
    sku: str
    quantity: int
    unit_price: int


# -- what happened to a reservation --------------------------------------------------


@dataclass(frozen=True)
class ReservationEvent:
    order_id: str


@dataclass(frozen=True)
class StockReserved(ReservationEvent):
    lines: tuple[ReservedLine, ...]
    currency: str


@dataclass(frozen=True)
class StockRefused(ReservationEvent):
    reason: str
    skus: tuple[str, ...]


@dataclass(frozen=True)
class StockReleased(ReservationEvent):
    pass


@dataclass(frozen=True)
class StockShipped(ReservationEvent):
    lines: tuple[ReservedLine, ...]


@dataclass(frozen=True)
class ReservationAdjusted(ReservationEvent):
    lines: tuple[ReservedLine, ...]
    currency: str


@dataclass(frozen=True)
class AdjustmentRefused(ReservationEvent):
    reason: str
    skus: tuple[str, ...]


@dataclass(frozen=True)
class ReservationExpired(ReservationEvent):
    pass


@dataclass
class Reservation:
    """What an order holds. Kept after release/refusal so a re-sent or late command
    for the same order gets the same answer instead of reserving again."""

    order_id: str
    status: ReservationStatus
    lines: list[ReservedLine] = field(default_factory=list)
    currency: str | None = None
    refusal_reason: str | None = None
    refused_skus: list[str] = field(default_factory=list)
    expires_at: datetime | None = None
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
        return [line.sku for line in self.lines] if self.holds_stock else []

    # -- what the order saga asks ------------------------------------------------

    def request(
        self, requested: dict[str, int], products: dict[str, Product], expires_at: datetime
    ) -> None:
        """Reserve `requested` (all or nothing), the first time it is asked; a
        repeated request gets the answer the first one got."""
        if self.status is ReservationStatus.ABSENT:
            made = reserve(self.order_id, requested, products, expires_at)
            self.status, self.lines, self.currency = made.status, made.lines, made.currency
            self.refusal_reason, self.refused_skus = made.refusal_reason, made.refused_skus
            self.expires_at = made.expires_at
        self.events.append(self._outcome())

    def cancel(self, products: dict[str, Product]) -> None:
        """The order was called off: give the stock back. One that arrives first is
        remembered, so a late request for the cancelled order is refused."""
        if self.status is ReservationStatus.COMMITTED:
            raise GoodsAlreadyShipped(self.order_id)
        if self.status is ReservationStatus.ABSENT:
            self.status = ReservationStatus.RELEASED
        self.release(products)
        self.events.append(StockReleased(self.order_id))

    def ship(self, products: dict[str, Product]) -> None:
        """The goods left the warehouse: turn what is held into a stock decrement
        (once; a repeat is answered again)."""
        if self.status not in (ReservationStatus.RESERVED, ReservationStatus.COMMITTED):
            raise NothingReserved(self.order_id)
        self.commit(products)
        self.events.append(StockShipped(self.order_id, tuple(self.lines)))

    def change_lines(self, requested: dict[str, int], products: dict[str, Product]) -> None:
        """The order's items changed: hold `requested` instead, all or nothing."""
        refusal = self.adjust(requested, products)
        if refusal is None:
            self.events.append(
                ReservationAdjusted(self.order_id, tuple(self.lines), self.currency or "")
            )
        else:
            reason, skus = refusal
            self.events.append(AdjustmentRefused(self.order_id, reason, tuple(skus)))

    # -- the stock itself --------------------------------------------------------

    def release(self, products: dict[str, Product]) -> bool:
        """Give the stock back; False if there was nothing (left) to release."""
        if self.status is not ReservationStatus.RESERVED:
            return False
        for line in self.lines:
            products[line.sku].release(line.quantity, self.order_id)
        self.status = ReservationStatus.RELEASED
        return True

    def adjust(
        self, requested: dict[str, int], products: dict[str, Product]
    ) -> tuple[str, list[str]] | None:
        """Hold `requested` instead of the current lines, all or nothing. Returns the
        refusal (reason, SKUs), or None when adjusted. Lines kept keep their price;
        new lines take today's."""
        if self.status is not ReservationStatus.RESERVED:
            return StatusReason.NOT_RESERVED, []
        unknown = sorted(sku for sku in requested if sku not in products)
        if unknown:
            return StatusReason.UNKNOWN_SKU, unknown
        if any(products[sku].currency != self.currency for sku in requested):
            return StatusReason.CURRENCY_MISMATCH, sorted(requested)
        held = {line.sku: line for line in self.lines}
        short = sorted(
            sku
            for sku, quantity in requested.items()
            if quantity - (held[sku].quantity if sku in held else 0) > products[sku].available
        )
        if short:
            return StatusReason.OUT_OF_STOCK, short
        for sku in set(held) | set(requested):
            change = requested.get(sku, 0) - (held[sku].quantity if sku in held else 0)
            if change > 0:
                products[sku].reserve(change, self.order_id)
            elif change < 0:
                products[sku].release(-change, self.order_id)
        self.lines = [
            ReservedLine(
                sku, quantity, held[sku].unit_price if sku in held else products[sku].unit_price
            )
            for sku, quantity in requested.items()
        ]
        return None

    def expire(self, products: dict[str, Product]) -> bool:
        """Release a reservation that outlived its time limit, and tell the saga."""
        if not self.release(products):
            return False
        self.status = ReservationStatus.EXPIRED
        self.events.append(ReservationExpired(self.order_id))
        return True

    def commit(self, products: dict[str, Product]) -> bool:
        """Turn the reservation into a stock decrement; False if not reserved."""
        if self.status is not ReservationStatus.RESERVED:
            return False
        for line in self.lines:
            products[line.sku].ship(line.quantity, self.order_id)
        self.status = ReservationStatus.COMMITTED
        return True

    def _outcome(self) -> StockReserved | StockRefused:
        """The answer to a reservation request, as things stand."""
        match self.status:
            case ReservationStatus.RESERVED | ReservationStatus.COMMITTED:
                return StockReserved(self.order_id, tuple(self.lines), self.currency or "")
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
    requested: dict[str, int],
    products: dict[str, Product],
    expires_at: datetime | None = None,
) -> Reservation:
    """All or nothing: either every line is reserved, or nothing is and the
    reservation is refused naming the SKUs that could not be served."""
    unknown = sorted(sku for sku in requested if sku not in products)
    if unknown:
        return _refused(order_id, StatusReason.UNKNOWN_SKU, unknown)
    currencies = {products[sku].currency for sku in requested}
    if len(currencies) > 1:
        return _refused(order_id, StatusReason.CURRENCY_MISMATCH, sorted(requested))
    short = sorted(sku for sku, qty in requested.items() if qty > products[sku].available)
    if short:
        return _refused(order_id, StatusReason.OUT_OF_STOCK, short)
    for sku, quantity in requested.items():
        products[sku].reserve(quantity, order_id)
    return Reservation(
        order_id=order_id,
        status=ReservationStatus.RESERVED,
        lines=[ReservedLine(sku, qty, products[sku].unit_price) for sku, qty in requested.items()],
        currency=currencies.pop(),
        expires_at=expires_at,
    )


def release_nothing(order_id: str) -> Reservation:
    """A release that arrived before (or instead of) the reservation: remember it, so
    a late reservation request for the cancelled order is refused."""
    return Reservation(order_id=order_id, status=ReservationStatus.RELEASED)


def _refused(order_id: str, reason: str, skus: list[str]) -> Reservation:
    return Reservation(
        order_id=order_id,
        status=ReservationStatus.REFUSED,
        refusal_reason=reason,
        refused_skus=skus,
    )


# -- replenishment -----------------------------------------------------------------


@dataclass(frozen=True)
class ReplenishmentRequested:
    sku: str
    quantity: int


@dataclass
class Replenishment:
    """A request to order stock in, opened when a product runs low; at most one is
    open per SKU (a delivery closes it)."""

    sku: str
    quantity: int
    available_at_request: int
    events: list[ReplenishmentRequested] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def for_low_stock(cls, alert: LowStockDetected) -> Replenishment:
        replenishment = cls(alert.sku, alert.reorder_quantity, alert.available)
        replenishment.events.append(ReplenishmentRequested(alert.sku, alert.reorder_quantity))
        return replenishment
