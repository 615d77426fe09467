"""Products, their stock, and reservations of stock for orders.

`available = on_hand - reserved` never goes below zero: a reservation is granted
only if every line fits (all or nothing), and the caller holds row locks on every
product involved while it decides, so concurrent orders cannot oversell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class StockError(Exception):
    code = "stock_error"


class InsufficientStock(StockError):
    code = "insufficient_stock"


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
    reorder_quantity: int


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
    events: list[LowStockDetected] = field(default_factory=list, compare=False, repr=False)
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
            raise StockError("restock quantity must be positive")
        self._move(MovementReason.RESTOCK, on_hand=quantity, note=note)
        self._recover_if_above_threshold()

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
            raise StockError(
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
                    self.sku, self.available, self.low_stock_threshold, self.reorder_quantity
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


@dataclass(frozen=True)
class ReservedLine:
    sku: str
    quantity: int
    unit_price: int


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
            return "not_reserved", []
        unknown = sorted(sku for sku in requested if sku not in products)
        if unknown:
            return "unknown_sku", unknown
        if any(products[sku].currency != self.currency for sku in requested):
            return "currency_mismatch", sorted(requested)
        held = {line.sku: line for line in self.lines}
        short = sorted(
            sku
            for sku, quantity in requested.items()
            if quantity - (held[sku].quantity if sku in held else 0) > products[sku].available
        )
        if short:
            return "out_of_stock", short
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
        """Release a reservation that outlived its time limit."""
        if not self.release(products):
            return False
        self.status = ReservationStatus.EXPIRED
        return True

    def commit(self, products: dict[str, Product]) -> bool:
        """Turn the reservation into a stock decrement; False if not reserved."""
        if self.status is not ReservationStatus.RESERVED:
            return False
        for line in self.lines:
            products[line.sku].ship(line.quantity, self.order_id)
        self.status = ReservationStatus.COMMITTED
        return True


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
        return _refused(order_id, "unknown_sku", unknown)
    currencies = {products[sku].currency for sku in requested}
    if len(currencies) > 1:
        return _refused(order_id, "currency_mismatch", sorted(requested))
    short = sorted(sku for sku, qty in requested.items() if qty > products[sku].available)
    if short:
        return _refused(order_id, "out_of_stock", short)
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
