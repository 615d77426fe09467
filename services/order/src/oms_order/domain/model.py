"""The order aggregate: it alone changes its status, and records why.

The saga is orchestrated here: each reply from another service moves the order one
step and records the event that tells the edge which command to send next. Replies
that arrive late (after a cancellation) or twice are absorbed: a late reservation or
authorization is compensated, a duplicate changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from oms_order.domain import events as domain_events
from oms_order.domain.errors import InvalidOrder, OrderNotCancellable


class OrderStatus(StrEnum):
    PENDING = "pending"
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    FULFILLING = "fulfilling"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    REJECTED = "rejected"
    # Compensation is under way; becomes `cancelled` once every step is undone.
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    REQUIRES_ATTENTION = "requires_attention"


TERMINAL_STATUSES = frozenset({OrderStatus.COMPLETED, OrderStatus.REJECTED, OrderStatus.CANCELLED})
CANCELLABLE_STATUSES = frozenset(
    {
        OrderStatus.PENDING,
        OrderStatus.AWAITING_PAYMENT,
        OrderStatus.PAID,
        OrderStatus.FULFILLING,
    }
)
MAX_LINES = 100
MAX_QUANTITY = 10_000


class Compensation(StrEnum):
    RELEASE_STOCK = "release_stock"
    VOID_PAYMENT = "void_payment"


@dataclass(frozen=True)
class Address:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None


@dataclass
class OrderLine:
    sku: str
    quantity: int
    unit_price: int | None = None


@dataclass
class Order:
    id: str
    customer_id: str
    lines: list[OrderLine]
    shipping_address: Address
    payment_token: str
    created_at: datetime
    updated_at: datetime | None = None
    status: OrderStatus = OrderStatus.PENDING
    status_reason: str | None = None
    status_detail: dict[str, object] = field(default_factory=dict)
    currency: str | None = None
    payment_id: str | None = None
    shipment_id: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    stock_reserved: bool = False
    payment_authorized: bool = False
    stock_committed: bool = False
    captured_amount: int = 0
    pending_compensations: set[Compensation] = field(default_factory=set)
    events: list[domain_events.OrderEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def place(
        cls,
        *,
        order_id: str,
        customer_id: str,
        lines: list[OrderLine],
        shipping_address: Address,
        payment_token: str,
        now: datetime,
    ) -> Order:
        if not lines:
            raise InvalidOrder("an order needs at least one line")
        if len(lines) > MAX_LINES:
            raise InvalidOrder(f"an order has at most {MAX_LINES} lines")
        merged: dict[str, int] = {}
        for line in lines:
            if not 0 < line.quantity <= MAX_QUANTITY:
                raise InvalidOrder(f"quantity of {line.sku} must be 1..{MAX_QUANTITY}")
            merged[line.sku] = merged.get(line.sku, 0) + line.quantity
        order = cls(
            id=order_id,
            customer_id=customer_id,
            lines=[OrderLine(sku, quantity) for sku, quantity in merged.items()],
            shipping_address=shipping_address,
            payment_token=payment_token,
            created_at=now,
            updated_at=now,
        )
        order._record(domain_events.OrderPlaced(order_id, created_at=now))
        return order

    # -- queries ---------------------------------------------------------------

    @property
    def total(self) -> int | None:
        if any(line.unit_price is None for line in self.lines):
            return None
        return sum(line.quantity * (line.unit_price or 0) for line in self.lines)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    # -- saga replies ----------------------------------------------------------

    def record_stock_reserved(self, unit_prices: dict[str, int], currency: str) -> None:
        if self.status is OrderStatus.PENDING:
            for line in self.lines:
                line.unit_price = unit_prices[line.sku]
            self.currency = currency
            self.stock_reserved = True
            self._move_to(OrderStatus.AWAITING_PAYMENT)
            self._record(domain_events.OrderAwaitingPayment(self.id, self.total or 0, currency))
        elif self.status in (OrderStatus.CANCELLING, OrderStatus.CANCELLED):
            # Reserved after the customer cancelled: give it straight back.
            self.stock_reserved = True
            self._compensate(self.status_reason or "cancelled", release_stock=True)

    def record_stock_unavailable(self, reason: str, skus: list[str]) -> None:
        if self.status is OrderStatus.PENDING:
            self.status_reason = reason
            self.status_detail = {"skus": sorted(skus)}
            self._move_to(OrderStatus.REJECTED)
            self._record(domain_events.OrderRejected(self.id, reason, tuple(sorted(skus))))
        elif self.status is OrderStatus.CANCELLING:
            self._compensation_done(Compensation.RELEASE_STOCK)

    def record_payment_authorized(self, payment_id: str) -> None:
        self.payment_id = payment_id
        if self.status is OrderStatus.AWAITING_PAYMENT:
            self.payment_authorized = True
            self._move_to(OrderStatus.PAID)
            self._record(domain_events.OrderPaid(self.id, payment_id))
        elif self.status in (OrderStatus.CANCELLING, OrderStatus.CANCELLED):
            self.payment_authorized = True
            self._compensate(self.status_reason or "cancelled", void_payment=True)

    def record_payment_failed(self, payment_id: str, reason: str) -> None:
        self.payment_id = payment_id
        if self.status is OrderStatus.AWAITING_PAYMENT:
            self._start_cancellation(reason)
        elif self.status is OrderStatus.CANCELLING:
            # Nothing was held on the card, so there is nothing to void.
            self._compensation_done(Compensation.VOID_PAYMENT)

    def record_shipment_created(self, shipment_id: str) -> None:
        self.shipment_id = shipment_id
        if self.status is OrderStatus.PAID:
            self._move_to(OrderStatus.FULFILLING)
            self._record(domain_events.OrderFulfilling(self.id, shipment_id))

    def record_shipment_dispatched(
        self, shipment_id: str, carrier: str, tracking_number: str
    ) -> None:
        # Dispatch may overtake the "created" notice when both are sent together.
        if self.status in (OrderStatus.PAID, OrderStatus.FULFILLING):
            self.shipment_id = shipment_id
            self.carrier = carrier
            self.tracking_number = tracking_number
            self._move_to(OrderStatus.SHIPPED)
            self._record(domain_events.OrderShipped(self.id, carrier, tracking_number))

    def record_delivery(self, shipment_id: str, carrier: str, tracking_number: str) -> None:
        self.record_shipment_dispatched(shipment_id, carrier, tracking_number)
        if self.status is OrderStatus.SHIPPED:
            self._move_to(OrderStatus.COMPLETED)
            self._record(domain_events.OrderCompleted(self.id))

    def record_stock_committed(self) -> None:
        if not self.stock_committed:
            self.stock_committed = True
            self._record(domain_events.StockCommitted(self.id))

    def record_payment_captured(self, amount: int) -> None:
        if self.captured_amount != amount:
            self.captured_amount = amount
            self._record(domain_events.PaymentCaptured(self.id, amount))

    def record_stock_released(self) -> None:
        self.stock_reserved = False
        self._compensation_done(Compensation.RELEASE_STOCK)

    def record_payment_voided(self) -> None:
        self.payment_authorized = False
        self._compensation_done(Compensation.VOID_PAYMENT)

    # -- customer requests ----------------------------------------------------

    def cancel(self, reason: str = "customer_request") -> None:
        if self.status in (OrderStatus.CANCELLING, OrderStatus.CANCELLED):
            return
        if self.status not in CANCELLABLE_STATUSES:
            raise OrderNotCancellable(f"an order that is {self.status} cannot be cancelled")
        self._start_cancellation(reason)

    # -- internals -------------------------------------------------------------

    def _start_cancellation(self, reason: str) -> None:
        # A reservation or authorization may still be in flight: undo defensively;
        # undoing something that never happened is a harmless no-op downstream.
        release = True
        void = self.payment_authorized or self.status is OrderStatus.AWAITING_PAYMENT
        if self.payment_id is not None and not self.payment_authorized:
            void = False  # the payment already failed: nothing is held
        self.status_reason = reason
        self._move_to(OrderStatus.CANCELLING)
        self._compensate(reason, release_stock=release, void_payment=void)

    def _compensate(
        self, reason: str, *, release_stock: bool = False, void_payment: bool = False
    ) -> None:
        if release_stock:
            self.pending_compensations.add(Compensation.RELEASE_STOCK)
        if void_payment:
            self.pending_compensations.add(Compensation.VOID_PAYMENT)
        self._record(
            domain_events.CompensationRequested(self.id, reason, release_stock, void_payment)
        )
        self._finish_cancellation_if_done()

    def _compensation_done(self, compensation: Compensation) -> None:
        if compensation in self.pending_compensations:
            self.pending_compensations.discard(compensation)
            if compensation is Compensation.RELEASE_STOCK:
                self._record(domain_events.StockReleased(self.id))
            else:
                self._record(domain_events.PaymentVoided(self.id))
        self._finish_cancellation_if_done()

    def _finish_cancellation_if_done(self) -> None:
        if self.status is OrderStatus.CANCELLING and not self.pending_compensations:
            self._move_to(OrderStatus.CANCELLED)
            self._record(domain_events.OrderCancelled(self.id, self.status_reason or "cancelled"))

    def _move_to(self, status: OrderStatus) -> None:
        self.status = status

    def _record(self, event: domain_events.OrderEvent) -> None:
        self.events.append(event)
