"""The order aggregate: it alone changes its status, and records why.

The saga is orchestrated here. Each reply from another service moves the order one
step and records the event that tells the edge which command to send next. Replies
that arrive late (after a cancellation) or twice are absorbed: a late reservation or
authorization is compensated, a duplicate changes nothing.

Compensation runs in reverse order of the steps: first the shipment is stopped (it
may still leave the warehouse, in which case the cancellation is abandoned), then
the money is returned and the stock released. The order becomes `cancelled` only
when every compensation is confirmed; one that keeps failing parks the order in
`requires_attention` for an operator instead of hiding behind `cancelled`.

An order ships in one parcel per stock location that holds its goods
(`fulfillment.py`). Each parcel leaves, settles (its stock committed, its amount
captured) and arrives on its own: the order is `partially_shipped` while some are
still in their warehouses, `shipped` once every parcel left, `completed` once every
parcel arrived and was paid for. Cancelling once some parcels left stops the others
and returns the money and stock they held; the order then goes on with what shipped.

A change of the items runs as a saga of its own (`amendment.py`); the order keeps
it, takes over the requests it records and applies how it ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from oms_contracts.reasons import StatusReason
from oms_order.domain import events as domain_events
from oms_order.domain.amendment import (
    Amendment,
    AmendmentStep,
    Applied,
    Ending,
    Rejected,
    RevertFailed,
)
from oms_order.domain.errors import (
    InvalidOrder,
    OrderNotCancellable,
    OrderNotDeletable,
    OrderNotInAttention,
    OrderNotModifiable,
)
from oms_order.domain.fulfillment import (
    DEFAULT_LOCATION,
    Fulfillment,
    ParcelStatus,
)
from oms_order.domain.returns import ShippedUnits
from oms_order.domain.values import ERASED_ADDRESS, Address, OrderLine, total_of

__all__ = [
    "ERASED_ADDRESS",
    "MAX_LINES",
    "MAX_QUANTITY",
    "Address",
    "Amendment",
    "AmendmentStep",
    "Compensation",
    "Fulfillment",
    "Order",
    "OrderLine",
    "OrderStatus",
]


class OrderStatus(StrEnum):
    PENDING = "pending"
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    FULFILLING = "fulfilling"
    # Some parcels left, others are still in their warehouses.
    PARTIALLY_SHIPPED = "partially_shipped"
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
        OrderStatus.PARTIALLY_SHIPPED,
    }
)
# Statuses in which parcels may wait in a warehouse or be on their way to one.
_SHIPMENT_REQUESTED = frozenset(
    {OrderStatus.PAID, OrderStatus.FULFILLING, OrderStatus.PARTIALLY_SHIPPED}
)
# Statuses in which what was shipped may be sent back.
RETURNABLE_STATUSES = frozenset(
    {OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED, OrderStatus.COMPLETED}
)
# Statuses in which the parcels that left are being settled.
_SETTLING = frozenset({OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED})
MAX_LINES = 100
MAX_QUANTITY = 10_000


class Compensation(StrEnum):
    CANCEL_SHIPMENT = "cancel_shipment"
    VOID_PAYMENT = "void_payment"
    RELEASE_STOCK = "release_stock"


@dataclass(frozen=True)
class Allocated:
    """What inventory said one location sends: the lines, and where it ships to."""

    location: str
    lines: tuple[tuple[str, int], ...]
    serves: tuple[str, ...] | None = None


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
    cancellation_reason: str | None = None
    currency: str | None = None
    payment_id: str | None = None
    # One per stock location sending part of the order, once inventory allocated it.
    fulfillments: list[Fulfillment] = field(default_factory=list)
    pending_compensations: set[Compensation] = field(default_factory=set)
    # Wait for the shipments to be stopped before these are sent.
    deferred_compensations: set[Compensation] = field(default_factory=set)
    # Where an order in `requires_attention` goes back to once resolved.
    resume_status: OrderStatus | None = None
    # Retries of the current step (compensation or settlement), for backoff.
    step_attempts: int = 0
    deadline_at: datetime | None = None
    # When the status last changed (for the saga's step durations).
    status_changed_at: datetime | None = None
    # An address change waiting for shipping to agree (the dispatch notes exist).
    pending_address: Address | None = None
    amendment: Amendment | None = None
    # When the customer's personal data was erased (see delete).
    deleted_at: datetime | None = None
    events: list[domain_events.OrderEvent] = field(default_factory=list, compare=False, repr=False)
    # Set when the step changed, so the edge re-arms the deadline.
    step_changed: bool = field(default=False, compare=False, repr=False)

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
        order = cls(
            id=order_id,
            customer_id=customer_id,
            lines=[OrderLine(sku, quantity) for sku, quantity in _merged(lines)],
            shipping_address=shipping_address,
            payment_token=payment_token,
            created_at=now,
            updated_at=now,
            status_changed_at=now,
            step_changed=True,
        )
        order._record(domain_events.OrderPlaced(order_id, created_at=now))
        return order

    # -- queries ---------------------------------------------------------------

    @property
    def total(self) -> int | None:
        return total_of(self.lines)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def shipped_parcels(self) -> list[Fulfillment]:
        """The parcels that left (and were not lost): what the order settles for."""
        return [parcel for parcel in self.fulfillments if parcel.has_left]

    @property
    def stock_committed(self) -> bool:
        shipped = self.shipped_parcels
        return bool(shipped) and all(parcel.stock_committed for parcel in shipped)

    @property
    def captured_amount(self) -> int:
        return sum(parcel.captured_amount for parcel in self.fulfillments)

    @property
    def delivered(self) -> bool:
        shipped = self.shipped_parcels
        return bool(shipped) and all(p.status is ParcelStatus.DELIVERED for p in shipped)

    @property
    def is_settled(self) -> bool:
        """The goods that left are off the books and paid for."""
        shipped = self.shipped_parcels
        return bool(shipped) and all(parcel.is_settled for parcel in shipped)

    @property
    def shipment_id(self) -> str | None:
        return next((p.shipment_id for p in self.fulfillments if p.shipment_id), None)

    @property
    def carrier(self) -> str | None:
        return next((p.carrier for p in self.fulfillments if p.tracking_number), None)

    @property
    def tracking_number(self) -> str | None:
        """The first parcel's (each parcel has its own, in `fulfillments`)."""
        return next((p.tracking_number for p in self.fulfillments if p.tracking_number), None)

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def shipped_units(self) -> list[ShippedUnits]:
        """What the customer received or has on the way, per SKU and location, at
        the price paid: what a return may send back (none before anything shipped,
        or while the order is not in a state that takes returns)."""
        if self.status not in RETURNABLE_STATUSES:
            return []
        prices = self.unit_prices()
        return [
            ShippedUnits(sku, parcel.location, quantity, prices.get(sku) or 0, parcel.dispatched_at)
            for parcel in self.shipped_parcels
            if parcel.dispatched_at is not None
            for sku, quantity in parcel.lines
        ]

    def unit_prices(self) -> dict[str, int | None]:
        return {line.sku: line.unit_price for line in self.lines}

    @property
    def _compensating(self) -> bool:
        return self.status is OrderStatus.CANCELLING or (
            self.status is OrderStatus.REQUIRES_ATTENTION
            and self.resume_status is OrderStatus.CANCELLING
        )

    @property
    def _undone(self) -> bool:
        return self._compensating or self.status is OrderStatus.CANCELLED

    def _parcel(self, fulfillment_id: str | None) -> Fulfillment | None:
        """The parcel named; a reply from before parcels existed (no id) means the
        order's first."""
        if fulfillment_id is None:
            return self.fulfillments[0] if self.fulfillments else None
        return next((p for p in self.fulfillments if p.id == fulfillment_id), None)

    # -- replies from inventory ------------------------------------------------

    def record_stock_reserved(
        self,
        unit_prices: dict[str, int],
        currency: str,
        allocations: list[Allocated] | None = None,
    ) -> None:
        if self.status is OrderStatus.PENDING:
            for line in self.lines:
                line.unit_price = unit_prices[line.sku]
            self.currency = currency
            self.fulfillments = self._parcels_of(allocations)
            self._move_to(OrderStatus.AWAITING_PAYMENT)
            self._record(domain_events.OrderAwaitingPayment(self.id, self.total or 0, currency))
        elif self._undone:
            # Reserved after the order was called off: give it straight back.
            self._request(Compensation.RELEASE_STOCK)
        else:
            self._ignored("inventory.stock_reserved")

    def record_stock_unavailable(self, reason: str, skus: list[str]) -> None:
        if self.status is OrderStatus.PENDING:
            self.status_reason = reason
            self.status_detail = {"skus": sorted(skus)}
            self._move_to(OrderStatus.REJECTED)
            self._record(domain_events.OrderRejected(self.id, reason, tuple(sorted(skus))))
        elif self._compensating:
            self._compensation_done(Compensation.RELEASE_STOCK)
        else:
            self._ignored("inventory.stock_reservation_failed")

    def record_stock_released(self) -> None:
        self._compensation_done(Compensation.RELEASE_STOCK)

    def record_reservation_expired(self) -> None:
        """Inventory gave the stock back because the order took too long."""
        if self.status in (OrderStatus.AWAITING_PAYMENT, *_SHIPMENT_REQUESTED):
            self._start_cancellation(StatusReason.RESERVATION_EXPIRED)
        else:
            self._ignored("inventory.reservation_expired")

    def record_stock_committed(self, fulfillment_id: str | None = None) -> None:
        """A parcel's stock left the books at its location (no id: every parcel's,
        as a reply from before parcels says)."""
        parcels = (
            [p for p in [self._parcel(fulfillment_id)] if p is not None]
            if fulfillment_id is not None
            else [p for p in self.fulfillments if p.dispatched_at is not None]
        )
        news = [parcel for parcel in parcels if not parcel.stock_committed]
        for parcel in news:
            parcel.stock_committed = True
            self._record(domain_events.StockCommitted(self.id, fulfillment_id))
        if news:
            self._send_deferred()
            self._settle_if_done()

    # -- replies from payment ----------------------------------------------------

    def record_payment_authorized(self, payment_id: str) -> None:
        self.payment_id = payment_id
        if self.status is OrderStatus.AWAITING_PAYMENT:
            self._move_to(OrderStatus.PAID)
            self._record(domain_events.OrderPaid(self.id, payment_id))
        elif self._undone:
            # Authorized after the order was called off: release the hold.
            self._request(Compensation.VOID_PAYMENT)
        else:
            self._ignored("payment.authorized")

    def record_payment_failed(self, payment_id: str, reason: str) -> None:
        self.payment_id = payment_id
        if self.status is OrderStatus.AWAITING_PAYMENT:
            self._start_cancellation(reason, nothing_held=True)
        elif self._compensating:
            # Nothing was held on the card, so there is nothing to void.
            self._compensation_done(Compensation.VOID_PAYMENT)
        else:
            self._ignored("payment.authorization_failed")

    def record_payment_voided(self) -> None:
        """The hold on the card was released (what the order keeps excepted)."""
        self._compensation_done(Compensation.VOID_PAYMENT)

    def record_payment_refunded(self, amount: int) -> None:
        """Captured money went back: for a cancelled order (a lost parcel, a late
        capture) that is how its payment is undone. Staff refunds of a finished
        order are the payment service's business, not a step of the saga."""
        self._compensation_done(
            Compensation.VOID_PAYMENT, domain_events.PaymentRefunded(self.id, amount)
        )

    def record_payment_captured(self, amount: int, fulfillment_id: str | None = None) -> None:
        """A parcel's amount was captured (no id: the one capture of the order, as a
        reply from before parcels says)."""
        parcel = self._parcel(fulfillment_id)
        if parcel is None:
            self._ignored("payment.captured")
            return
        if parcel.captured_amount != amount:
            parcel.captured_amount = amount
            self._record(domain_events.PaymentCaptured(self.id, amount, fulfillment_id))
            self._settle_if_done()

    def record_void_failed(self, error: str, *, retryable: bool = False) -> None:
        """The money could not be given back. A refusal needs an operator; no answer
        from the gateway (it was down) is asked again by the step's deadline, as an
        unanswered step is, and only past its attempts does it need one."""
        if Compensation.VOID_PAYMENT in self.pending_compensations and self._compensating:
            if retryable:
                self._record(domain_events.StepUnanswered(self.id, "void_payment", error))
            else:
                self._needs_attention(StatusReason.VOID_FAILED.because(error))

    def record_capture_failed(self, error: str, *, retryable: bool = False) -> None:
        """As `record_void_failed`, for a parcel's capture."""
        if self.status in _SETTLING:
            if retryable:
                self._record(domain_events.StepUnanswered(self.id, "capture_payment", error))
            else:
                self._needs_attention(StatusReason.CAPTURE_FAILED.because(error))

    # -- replies from shipping ---------------------------------------------------

    def record_shipment_created(self, shipment_id: str, fulfillment_id: str | None = None) -> None:
        parcel = self._parcel(fulfillment_id)
        if parcel is None:
            # A parcel an item change is adding, announced before the change ended.
            if self.amendment is not None:
                self.amendment.record_created(fulfillment_id, shipment_id)
            return
        parcel.record_created(shipment_id)
        if self.status is OrderStatus.PAID and not any(
            p.status is ParcelStatus.PENDING for p in self.fulfillments
        ):
            self._move_to(OrderStatus.FULFILLING)
            self._record(domain_events.OrderFulfilling(self.id, self.shipment_id or shipment_id))

    def record_shipment_dispatched(
        self,
        shipment_id: str,
        carrier: str,
        tracking_number: str,
        fulfillment_id: str | None = None,
    ) -> None:
        parcel = self._parcel(fulfillment_id)
        if parcel is None or parcel.status in (ParcelStatus.CANCELLED, ParcelStatus.FAILED):
            self._ignored("shipping.shipment_dispatched")
            return
        was_stopping = parcel.cancel_requested
        expected = self.status in _SHIPMENT_REQUESTED or was_stopping or parcel.has_left
        if not expected and self.status is not OrderStatus.REQUIRES_ATTENTION:
            self._ignored("shipping.shipment_dispatched")
            return
        if parcel.record_dispatched(shipment_id, carrier, tracking_number, _now()):
            self._record(
                domain_events.ParcelDispatched(
                    self.id,
                    parcel.id,
                    parcel.location,
                    parcel.amount(self.unit_prices()),
                    carrier,
                    tracking_number,
                )
            )
            if self.status in _SHIPMENT_REQUESTED:
                self._shipping_progressed(parcel)
        if was_stopping:
            # The parcel left before the cancellation reached its warehouse.
            self._cancel_answered()

    def record_shipment_cancelled(self, fulfillment_id: str | None = None) -> None:
        parcel = self._parcel(fulfillment_id)
        if parcel is None or not parcel.cancel_requested or not parcel.is_open:
            return
        parcel.status = ParcelStatus.CANCELLED
        parcel.cancel_requested = False
        self._record(domain_events.ShipmentCancelled(self.id, fulfillment_id))
        self._cancel_answered()

    def record_shipment_failed(self, reason: str, fulfillment_id: str | None = None) -> None:
        parcel = self._parcel(fulfillment_id)
        if parcel is None:
            self._ignored("shipping.shipment_failed")
        elif parcel.cancel_requested and parcel.is_open:
            self.record_shipment_cancelled(parcel.id)
        elif parcel.is_open and self.status in _SHIPMENT_REQUESTED:
            # The parcel cannot be made: the order is called off (what left goes on).
            parcel.status = ParcelStatus.FAILED
            self._start_cancellation(reason)
        elif (
            parcel.status is ParcelStatus.DISPATCHED
            and not self._undone
            and self.status is not OrderStatus.COMPLETED
        ):
            # Lost on the way: its stock is gone, its money goes back.
            parcel.status = ParcelStatus.FAILED
            self._start_cancellation(reason)
        elif parcel.status is ParcelStatus.DISPATCHED and self._compensating:
            # Lost too while another parcel's money is going back: ask the payment
            # again, keeping less (it refunds the difference; what it already gave
            # back is not given twice).
            parcel.status = ParcelStatus.FAILED
            if Compensation.VOID_PAYMENT not in self.deferred_compensations:
                self._request(Compensation.VOID_PAYMENT)
        else:
            self._ignored("shipping.shipment_failed")

    def record_delivery(
        self,
        shipment_id: str,
        carrier: str,
        tracking_number: str,
        fulfillment_id: str | None = None,
    ) -> None:
        self.record_shipment_dispatched(shipment_id, carrier, tracking_number, fulfillment_id)
        parcel = self._parcel(fulfillment_id)
        if parcel is not None and parcel.status is ParcelStatus.DISPATCHED:
            parcel.status = ParcelStatus.DELIVERED
            self._settle_if_done()

    # -- customer and operator requests ---------------------------------------

    def cancel(self, reason: str = StatusReason.CUSTOMER_REQUEST) -> None:
        if self._undone:
            return
        if self.status not in CANCELLABLE_STATUSES:
            raise OrderNotCancellable(f"an order that is {self.status} cannot be cancelled")
        self._start_cancellation(reason)

    def change_address(self, address: Address) -> None:
        """Before a shipment is requested the order alone decides; after, shipping
        must agree (it refuses once a parcel left). The locations holding the stock
        must ship to the new country."""
        if self.status is OrderStatus.PENDING:
            if address.country != self.shipping_address.country:
                # Inventory is choosing locations for the old country right now.
                raise OrderNotModifiable(
                    "stock is being allocated for this order; try the new country shortly"
                )
        elif self.status in (
            OrderStatus.AWAITING_PAYMENT,
            OrderStatus.PAID,
            OrderStatus.FULFILLING,
        ):
            unserved = sorted(
                {p.location for p in self.fulfillments if not p.ships_to(address.country)}
            )
            if unserved:
                raise OrderNotModifiable(
                    f"the stock for this order is at locations that do not ship to "
                    f"{address.country}: {', '.join(unserved)}"
                )
        else:
            raise OrderNotModifiable(
                f"the shipping address of an order that is {self.status} cannot change"
            )
        if self.status in (OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT):
            self.shipping_address = address
            self._record(domain_events.ShippingAddressChanged(self.id))
        else:
            self.pending_address = address
            self._record(domain_events.ShippingAddressChangeRequested(self.id))

    def record_address_changed(self, address: Address) -> None:
        self.shipping_address = address
        if self.pending_address == address:
            self.pending_address = None
        self._record(domain_events.ShippingAddressChanged(self.id))

    def record_address_change_refused(self, reason: str) -> None:
        self.pending_address = None
        self._record(domain_events.ShippingAddressChangeRefused(self.id, reason))

    def amend_items(self, lines: list[OrderLine]) -> None:
        """Replace the items of a paid order none of whose parcels left."""
        if self.status in (OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT):
            raise OrderNotModifiable(
                "stock and payment are still being arranged for this order; try again shortly"
            )
        if self.status not in (OrderStatus.PAID, OrderStatus.FULFILLING):
            raise OrderNotModifiable(f"the items of an order that is {self.status} cannot change")
        if self.amendment is not None:
            raise OrderNotModifiable("an earlier change of the items is still under way")
        requested = _merged(lines)
        if requested == [(line.sku, line.quantity) for line in self.lines]:
            return
        self.amendment = Amendment.start(
            self.id, self.lines, requested, self.shipping_address.country
        )
        self.status_detail = {**self.status_detail, "item_change": {"status": "in_progress"}}
        self._follow(self.amendment)

    # -- replies about a change of items -------------------------------------------

    def record_shipment_held(self) -> None:
        self._amend(lambda amendment: amendment.shipment_held())

    def record_shipment_hold_refused(self, reason: str) -> None:
        self._amend(lambda amendment: amendment.hold_refused(reason))

    def record_reservation_adjusted(
        self, unit_prices: dict[str, int], allocations: list[Allocated] | None = None
    ) -> None:
        amendment = self.amendment
        if amendment is None:
            self._ignored("inventory.reservation_adjusted")
            return
        lines = amendment.stock_adjusted(
            unit_prices,
            self._parcels_of(allocations, amendment_lines(amendment)),
            self.fulfillments,
        )
        if lines is not None:
            self.lines = lines
        self._follow(amendment)

    def record_reservation_adjustment_failed(self, reason: str, skus: list[str]) -> None:
        if self.amendment is None:
            self._ignored("inventory.reservation_adjustment_failed")
            return
        self._amend(lambda amendment: amendment.stock_refused(reason, skus))

    def record_reauthorized(self) -> None:
        self._amend(lambda amendment: amendment.reauthorized())

    def record_reauthorization_failed(self, reason: str) -> None:
        self._amend(lambda amendment: amendment.reauthorization_refused(reason))

    def record_shipment_updated(self) -> None:
        self._amend(lambda amendment: amendment.shipment_updated())

    def record_shipment_released(self) -> None:
        self._amend(lambda amendment: amendment.shipment_released())

    def delete(self) -> None:
        """Erase the customer's personal data of a finished order. What was sold and
        paid stays, for the books; the order disappears from the API."""
        if not self.is_terminal:
            raise OrderNotDeletable(
                f"only completed, rejected or cancelled orders can be deleted, not {self.status}"
            )
        if self.deleted:
            return
        self.deleted_at = _now()
        self.shipping_address = ERASED_ADDRESS
        self.pending_address = None
        self.payment_token = ""
        self._record(domain_events.OrderDeleted(self.id))

    def retry(self, operator: str) -> None:
        """An operator asks for the failing steps to be tried again."""
        if self.status is not OrderStatus.REQUIRES_ATTENTION or self.resume_status is None:
            raise OrderNotInAttention(f"the order is {self.status}, nothing to retry")
        self._record(domain_events.OperatorRetried(self.id, operator))
        self.status_reason = self.cancellation_reason
        self._move_to(self.resume_status)
        self.resume_status = None
        self._catch_up_shipping()
        self._resend_current_step()

    def force_compensation(self, operator: str) -> None:
        """An operator settled the failing steps by hand (e.g. voided in the gateway's
        dashboard, or stopped a parcel on the warehouse floor): consider them done."""
        if self.status is not OrderStatus.REQUIRES_ATTENTION or self.resume_status is None:
            raise OrderNotInAttention(f"the order is {self.status}, nothing to force")
        if self.resume_status is OrderStatus.CANCELLING:
            skipped: tuple[str, ...] = tuple(
                c.value
                for c in (*sorted(self.pending_compensations), *sorted(self.deferred_compensations))
            )
            self.pending_compensations.clear()
            self.deferred_compensations.clear()
            for parcel in self.fulfillments:
                if parcel.cancel_requested and parcel.is_open:
                    parcel.status = ParcelStatus.CANCELLED
                parcel.cancel_requested = False
        else:
            skipped = self._unsettled_steps()
            for parcel in self.shipped_parcels:
                parcel.settled_by_hand = not parcel.is_settled or parcel.settled_by_hand
        self._record(domain_events.CompensationForced(self.id, operator, tuple(skipped)))
        self.status_reason = self.cancellation_reason
        self._move_to(self.resume_status)
        self.resume_status = None
        self._finish_cancellation_if_done()
        self._settle_if_done()

    # -- time ------------------------------------------------------------------

    def deadline_passed(self, max_attempts: int) -> None:
        """The current step's deadline passed without an answer."""
        match self.status:
            case OrderStatus.PENDING:
                self._start_cancellation(StatusReason.RESERVATION_TIMEOUT)
            case OrderStatus.AWAITING_PAYMENT:
                self._start_cancellation(StatusReason.PAYMENT_TIMEOUT)
            case OrderStatus.PAID:
                self._start_cancellation(StatusReason.SHIPMENT_TIMEOUT)
            case OrderStatus.FULFILLING | OrderStatus.PARTIALLY_SHIPPED:
                # The parcels still in their warehouses are stopped; what left goes on.
                self._start_cancellation(StatusReason.DISPATCH_TIMEOUT)
            case OrderStatus.CANCELLING | OrderStatus.SHIPPED:
                if self.status is OrderStatus.SHIPPED and self.is_settled:
                    return
                if self.step_attempts + 1 >= max_attempts:
                    self._needs_attention(
                        StatusReason.COMPENSATION_TIMEOUT
                        if self._compensating
                        else StatusReason.SETTLEMENT_TIMEOUT
                    )
                else:
                    self.step_attempts += 1
                    self.step_changed = True
                    self._resend_current_step()

    def arm_deadline(self, now: datetime, wait: timedelta | None) -> None:
        self.deadline_at = None if wait is None else now + wait
        self.step_changed = False

    # -- internals -------------------------------------------------------------

    def _parcels_of(
        self, allocations: list[Allocated] | None, lines: list[tuple[str, int]] | None = None
    ) -> list[Fulfillment]:
        """The parcels inventory allocated; none named (an inventory of before
        locations) means one parcel from the default location."""
        if not allocations:
            whole = lines if lines is not None else [(ln.sku, ln.quantity) for ln in self.lines]
            return [Fulfillment.allocated(self.id, DEFAULT_LOCATION, whole)]
        return [Fulfillment.allocated(self.id, a.location, a.lines, a.serves) for a in allocations]

    def _shipping_progressed(self, parcel: Fulfillment) -> None:
        """A parcel left: the order is shipped once none is left in a warehouse."""
        if any(p.is_open for p in self.fulfillments):
            self._move_to(OrderStatus.PARTIALLY_SHIPPED)
            self._record(
                domain_events.OrderPartiallyShipped(
                    self.id,
                    parcel.id,
                    parcel.location,
                    parcel.carrier or "",
                    parcel.tracking_number or "",
                )
            )
        else:
            self._move_to(OrderStatus.SHIPPED)
            self._record(
                domain_events.OrderShipped(self.id, self.carrier or "", self.tracking_number or "")
            )
            self._settle_if_done()

    def _amend(self, transition: Callable[[Amendment], Ending | None]) -> None:
        """Move the change of items on, if one is under way."""
        if self.amendment is not None:
            self._follow(self.amendment, transition(self.amendment))

    def _follow(self, amendment: Amendment, ending: Ending | None = None) -> None:
        """Take over what the change of items asks for; apply how it ended, if it did."""
        self.events.extend(amendment.events)
        amendment.events.clear()
        if ending is not None and amendment.parcels is not None:
            self.fulfillments = _carried_over(self.fulfillments, amendment.parcels)
        match ending:
            case Applied():
                self.amendment = None
                self.status_detail = {**self.status_detail, "item_change": {"status": "applied"}}
                self._record(domain_events.OrderAmended(self.id, self.total or 0))
            case Rejected(reason=reason, skus=skus):
                self.amendment = None
                change: dict[str, object] = {"status": "rejected", "reason": reason}
                if skus:
                    change["skus"] = list(skus)
                self.status_detail = {**self.status_detail, "item_change": change}
                self._record(domain_events.AmendmentRejected(self.id, reason, skus))
            case RevertFailed(reason=reason):
                self._needs_attention(StatusReason.ITEM_CHANGE_REVERT_FAILED.because(reason))

    def _start_cancellation(self, reason: str, *, nothing_held: bool = False) -> None:
        """Stop the parcels still in their warehouses first; then give back the money
        (all of it, or what the parcels that left did not cost) and the stock not
        shipped. `nothing_held`: the cancellation is the payment's failure, so there
        is no hold to release."""
        to_stop = self.fulfillments if self.status in _SHIPMENT_REQUESTED else []
        to_stop = [parcel for parcel in to_stop if parcel.is_open]
        # A reservation or authorization may still be in flight: undo defensively;
        # undoing something that never happened is a harmless no-op downstream.
        undo: set[Compensation] = set()
        if not self.fulfillments or any(p.dispatched_at is None for p in self.fulfillments):
            undo.add(Compensation.RELEASE_STOCK)
        if not nothing_held and self.status is not OrderStatus.PENDING:
            undo.add(Compensation.VOID_PAYMENT)
        self.cancellation_reason = reason
        self.status_reason = reason
        self.amendment = None  # whatever the change reached, compensation undoes it all
        self._move_to(OrderStatus.CANCELLING)
        if to_stop:
            for parcel in to_stop:
                parcel.cancel_requested = True
            self.deferred_compensations = undo
            self._request(Compensation.CANCEL_SHIPMENT)
        else:
            self.deferred_compensations = undo
            self._send_deferred()
        self._finish_cancellation_if_done()

    def _cancel_answered(self) -> None:
        """Shipping answered for a parcel it was asked to stop."""
        if Compensation.CANCEL_SHIPMENT not in self.pending_compensations:
            return
        if any(p.cancel_requested and p.is_open for p in self.fulfillments):
            return  # other parcels' answers are still awaited
        if self._compensating and all(p.has_left for p in self.fulfillments):
            self._abandon_cancellation()
            return
        self.pending_compensations.discard(Compensation.CANCEL_SHIPMENT)
        self._send_deferred()
        self._finish_cancellation_if_done()

    def _abandon_cancellation(self) -> None:
        """Every parcel left before the cancellation reached it: it ships after all."""
        self._record(domain_events.CancellationAbandoned(self.id, StatusReason.ALREADY_DISPATCHED))
        self.pending_compensations.clear()
        self.deferred_compensations.clear()
        self.cancellation_reason = None
        self.status_reason = None
        self.resume_status = None
        self._move_to(OrderStatus.SHIPPED)
        self._record(
            domain_events.OrderShipped(self.id, self.carrier or "", self.tracking_number or "")
        )
        self._settle_if_done()

    def _send_deferred(self) -> None:
        """Send the compensations that waited for the shipments to be stopped. The
        stock is released only once every parcel that left is committed, so a
        release can never give back what a parcel took with it."""
        if not self._compensating or Compensation.CANCEL_SHIPMENT in self.pending_compensations:
            return
        ready = set(self.deferred_compensations)
        if Compensation.RELEASE_STOCK in ready and any(
            p.dispatched_at is not None and not p.stock_committed for p in self.fulfillments
        ):
            ready.discard(Compensation.RELEASE_STOCK)
        self.deferred_compensations -= ready
        self._request(*ready)

    def _request(self, *compensations: Compensation) -> None:
        self.pending_compensations.update(compensations)
        if compensations:
            self._record(self._compensation_event(set(compensations)))

    def _compensation_event(self, which: set[Compensation]) -> domain_events.CompensationRequested:
        stopping = (
            tuple(p.id for p in self.fulfillments if p.cancel_requested and p.is_open)
            if Compensation.CANCEL_SHIPMENT in which
            else ()
        )
        return domain_events.CompensationRequested(
            self.id,
            self.cancellation_reason or "cancelled",
            release_stock=Compensation.RELEASE_STOCK in which,
            void_payment=Compensation.VOID_PAYMENT in which,
            cancel_shipment=Compensation.CANCEL_SHIPMENT in which,
            cancel_parcels=stopping,
            keep_amount=self._kept_amount(),
        )

    def _kept_amount(self) -> int:
        """What the customer pays for: the parcels that left and were not lost."""
        prices = self.unit_prices()
        return sum(parcel.amount(prices) for parcel in self.shipped_parcels)

    def _resend_current_step(self) -> None:
        if self.amendment is not None and self.amendment.resend():
            self._follow(self.amendment)
        elif self.status is OrderStatus.CANCELLING:
            if self.pending_compensations:
                self._record(self._compensation_event(self.pending_compensations))
            # A release waits for the parcels that left to be committed: ask again.
            unsettled = self._unsettled_parcels()
            if unsettled and self.deferred_compensations:
                self._record(domain_events.SettlementRequested(self.id, unsettled))
        elif self.status in _SETTLING:
            unsettled = self._unsettled_parcels()
            if unsettled:
                self._record(domain_events.SettlementRequested(self.id, unsettled))

    def _unsettled_parcels(self) -> tuple[domain_events.ParcelSettlement, ...]:
        prices = self.unit_prices()
        return tuple(
            domain_events.ParcelSettlement(
                parcel.id,
                parcel.location,
                parcel.amount(prices),
                commit_stock=not parcel.stock_committed,
                capture_payment=parcel.captured_amount == 0,
            )
            for parcel in self.shipped_parcels
            if not parcel.is_settled
        )

    def _compensation_done(
        self, compensation: Compensation, done: domain_events.OrderEvent | None = None
    ) -> None:
        if compensation in self.pending_compensations:
            self.pending_compensations.discard(compensation)
            if done is not None:
                self._record(done)
            elif compensation is Compensation.RELEASE_STOCK:
                self._record(domain_events.StockReleased(self.id))
            else:
                self._record(domain_events.PaymentVoided(self.id))
        self._finish_cancellation_if_done()

    def _finish_cancellation_if_done(self) -> None:
        if not self._compensating or self.pending_compensations or self.deferred_compensations:
            return
        self.resume_status = None
        shipped = self.shipped_parcels
        if not shipped:
            self.status_reason = self.cancellation_reason
            self._move_to(OrderStatus.CANCELLED)
            self._record(domain_events.OrderCancelled(self.id, self.cancellation_reason or ""))
            return
        # Some parcels left: the order goes on with them.
        stopped = [p for p in self.fulfillments if not p.has_left]
        cancelled_lines = _summed(line for parcel in stopped for line in parcel.lines)
        reason = self.cancellation_reason or ""
        self.status_reason = None
        self.status_detail = {
            **self.status_detail,
            "cancelled_lines": [{"sku": sku, "quantity": qty} for sku, qty in cancelled_lines],
            "cancellation_reason": reason,
        }
        self.cancellation_reason = None
        self._record(domain_events.OrderPartiallyCancelled(self.id, reason, cancelled_lines))
        self._move_to(OrderStatus.SHIPPED)
        self._settle_if_done()

    def _settle_if_done(self) -> None:
        """Once the parcels that left are paid for and off the books, an order back
        from an operator goes on, and a shipped one whose parcels all arrived is done."""
        resuming = self.status is OrderStatus.REQUIRES_ATTENTION and self.resume_status in _SETTLING
        if not (self.status is OrderStatus.SHIPPED or resuming) or not self.is_settled:
            return
        if resuming:
            assert self.resume_status is not None
            self.status_reason = None
            back, self.resume_status = self.resume_status, None
            self._move_to(back)
            self._catch_up_shipping()
        if self.status is OrderStatus.SHIPPED and self.delivered:
            self._move_to(OrderStatus.COMPLETED)
            self._record(domain_events.OrderCompleted(self.id))
        else:
            self.step_changed = True  # settled: nothing left to wait for

    def _catch_up_shipping(self) -> None:
        """Parcels that left while an operator was needed count now."""
        if self.status is OrderStatus.PARTIALLY_SHIPPED and not any(
            p.is_open for p in self.fulfillments
        ):
            self._move_to(OrderStatus.SHIPPED)
            self._record(
                domain_events.OrderShipped(self.id, self.carrier or "", self.tracking_number or "")
            )

    def _needs_attention(self, reason: str) -> None:
        if self.status is OrderStatus.REQUIRES_ATTENTION:
            return
        self.resume_status = self.status
        self.status_reason = reason
        self._move_to(OrderStatus.REQUIRES_ATTENTION)
        pending = tuple(
            c.value for c in sorted(self.pending_compensations | self.deferred_compensations)
        )
        if self.resume_status in _SETTLING:
            pending = self._unsettled_steps()
        self._record(domain_events.OrderRequiresAttention(self.id, reason, pending))

    def _unsettled_steps(self) -> tuple[str, ...]:
        shipped = self.shipped_parcels
        steps = {
            "commit_stock": bool(shipped) and all(p.stock_committed for p in shipped),
            "capture_payment": bool(shipped) and all(p.captured_amount > 0 for p in shipped),
        }
        return tuple(step for step, done in steps.items() if not done)

    def _ignored(self, reply: str) -> None:
        self._record(domain_events.ReplyIgnored(self.id, reply))

    def _move_to(self, status: OrderStatus) -> None:
        if status is not self.status:
            self.step_attempts = 0
            self.status_changed_at = _now()
        self.status = status
        self.step_changed = True

    def _record(self, event: domain_events.OrderEvent) -> None:
        self.events.append(event)


def amendment_lines(amendment: Amendment) -> list[tuple[str, int]]:
    """The lines inventory was last asked to hold for a change of items."""
    if amendment.step is AmendmentStep.REVERTING_STOCK:
        return amendment.previous_lines()
    return list(amendment.lines)


def _carried_over(current: list[Fulfillment], parcels: list[Fulfillment]) -> list[Fulfillment]:
    """The new parcels, keeping what is known of those that were there already."""
    known = {parcel.id: parcel for parcel in current}
    result = []
    for parcel in parcels:
        before = known.get(parcel.id)
        if before is not None:
            parcel.shipment_id = parcel.shipment_id or before.shipment_id
            if before.status is not ParcelStatus.PENDING and parcel.status is ParcelStatus.PENDING:
                parcel.status = before.status
        result.append(parcel)
    return result


def _summed(lines: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    totals: dict[str, int] = {}
    for sku, quantity in lines:
        totals[sku] = totals.get(sku, 0) + quantity
    return tuple(totals.items())


def _now() -> datetime:
    return datetime.now(UTC)


def _merged(lines: list[OrderLine]) -> list[tuple[str, int]]:
    """Lines of the same SKU added up, in first-seen order; the limits enforced."""
    if not lines:
        raise InvalidOrder("an order needs at least one line")
    if len(lines) > MAX_LINES:
        raise InvalidOrder(f"an order has at most {MAX_LINES} lines")
    merged: dict[str, int] = {}
    for line in lines:
        if not 0 < line.quantity <= MAX_QUANTITY:
            raise InvalidOrder(f"quantity of {line.sku} must be 1..{MAX_QUANTITY}")
        merged[line.sku] = merged.get(line.sku, 0) + line.quantity
    if any(quantity > MAX_QUANTITY for quantity in merged.values()):
        raise InvalidOrder(f"at most {MAX_QUANTITY} of one SKU per order")
    return list(merged.items())
