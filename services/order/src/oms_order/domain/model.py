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

A change of the items runs as a saga of its own (`amendment.py`); the order keeps
it, takes over the requests it records and applies how it ends.
"""

from __future__ import annotations

from collections.abc import Callable
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
from oms_order.domain.values import ERASED_ADDRESS, Address, OrderLine, total_of

__all__ = [
    "ERASED_ADDRESS",
    "MAX_LINES",
    "MAX_QUANTITY",
    "Address",
    "Amendment",
    "AmendmentStep",
    "Compensation",
    "Order",
    "OrderLine",
    "OrderStatus",
]


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
# Statuses in which a shipment may exist or be on its way into existence.
_SHIPMENT_REQUESTED = frozenset({OrderStatus.PAID, OrderStatus.FULFILLING})
MAX_LINES = 100
MAX_QUANTITY = 10_000


class Compensation(StrEnum):
    CANCEL_SHIPMENT = "cancel_shipment"
    VOID_PAYMENT = "void_payment"
    RELEASE_STOCK = "release_stock"


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
    shipment_id: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    # What the order cannot tell from its status: the facts of its settlement and
    # delivery, reported by other services in any order.
    stock_committed: bool = False
    captured_amount: int = 0
    delivered: bool = False
    # An operator confirmed the settlement by hand (see force_compensation).
    settlement_forced: bool = False
    pending_compensations: set[Compensation] = field(default_factory=set)
    # Wait for the shipment to be stopped before these are sent.
    deferred_compensations: set[Compensation] = field(default_factory=set)
    # Where an order in `requires_attention` goes back to once resolved.
    resume_status: OrderStatus | None = None
    # Retries of the current step (compensation or settlement), for backoff.
    step_attempts: int = 0
    deadline_at: datetime | None = None
    # When the status last changed (for the saga's step durations).
    status_changed_at: datetime | None = None
    # An address change waiting for shipping to agree (the dispatch note exists).
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
    def is_settled(self) -> bool:
        """The goods left the books and the money was taken."""
        return self.settlement_forced or (self.stock_committed and self.captured_amount > 0)

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def _compensating(self) -> bool:
        return self.status is OrderStatus.CANCELLING or (
            self.status is OrderStatus.REQUIRES_ATTENTION
            and self.resume_status is OrderStatus.CANCELLING
        )

    @property
    def _undone(self) -> bool:
        return self._compensating or self.status is OrderStatus.CANCELLED

    # -- replies from inventory ------------------------------------------------

    def record_stock_reserved(self, unit_prices: dict[str, int], currency: str) -> None:
        if self.status is OrderStatus.PENDING:
            for line in self.lines:
                line.unit_price = unit_prices[line.sku]
            self.currency = currency
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

    def record_stock_committed(self) -> None:
        if not self.stock_committed:
            self.stock_committed = True
            self._record(domain_events.StockCommitted(self.id))
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
        """The hold on the card was released."""
        self._compensation_done(Compensation.VOID_PAYMENT)

    def record_payment_refunded(self, amount: int) -> None:
        """Captured money went back: for a cancelled order (a lost parcel, a late
        capture) that is how its payment is undone. Staff refunds of a finished
        order are the payment service's business, not a step of the saga."""
        self._compensation_done(
            Compensation.VOID_PAYMENT, domain_events.PaymentRefunded(self.id, amount)
        )

    def record_payment_captured(self, amount: int) -> None:
        if self.captured_amount != amount:
            self.captured_amount = amount
            self._record(domain_events.PaymentCaptured(self.id, amount))
            self._settle_if_done()

    def record_void_failed(self, error: str) -> None:
        if Compensation.VOID_PAYMENT in self.pending_compensations and self._compensating:
            self._needs_attention(StatusReason.VOID_FAILED.because(error))

    def record_capture_failed(self, error: str) -> None:
        if self.status is OrderStatus.SHIPPED:
            self._needs_attention(StatusReason.CAPTURE_FAILED.because(error))

    # -- replies from shipping ---------------------------------------------------

    def record_shipment_created(self, shipment_id: str) -> None:
        self.shipment_id = shipment_id
        if self.status is OrderStatus.PAID:
            self._move_to(OrderStatus.FULFILLING)
            self._record(domain_events.OrderFulfilling(self.id, shipment_id))

    def record_shipment_dispatched(
        self, shipment_id: str, carrier: str, tracking_number: str
    ) -> None:
        if self._compensating and Compensation.CANCEL_SHIPMENT in self.pending_compensations:
            # The parcel left before the cancellation arrived: it ships after all.
            self._record(
                domain_events.CancellationAbandoned(self.id, StatusReason.ALREADY_DISPATCHED)
            )
            self.pending_compensations.clear()
            self.deferred_compensations.clear()
            self.cancellation_reason = None
            self.status_reason = None
            self.resume_status = None
            self._move_to(OrderStatus.FULFILLING)
        # Dispatch may overtake the "created" notice when both are sent together.
        if self.status in _SHIPMENT_REQUESTED:
            self.shipment_id = shipment_id
            self.carrier = carrier
            self.tracking_number = tracking_number
            self._move_to(OrderStatus.SHIPPED)
            self._record(domain_events.OrderShipped(self.id, carrier, tracking_number))

    def record_shipment_cancelled(self) -> None:
        if Compensation.CANCEL_SHIPMENT in self.pending_compensations:
            self._record(domain_events.ShipmentCancelled(self.id))
            self.pending_compensations.discard(Compensation.CANCEL_SHIPMENT)
            deferred, self.deferred_compensations = self.deferred_compensations, set()
            self._request(*deferred)

    def record_shipment_failed(self, reason: str) -> None:
        if self.status in _SHIPMENT_REQUESTED:
            self._start_cancellation(reason, shipment_gone=True)
        elif self.status is OrderStatus.SHIPPED and not self.delivered:
            # Lost on the way: the stock is gone, the money goes back.
            self._start_cancellation(reason, shipment_gone=True)
        elif Compensation.CANCEL_SHIPMENT in self.pending_compensations:
            self.record_shipment_cancelled()
        else:
            self._ignored("shipping.shipment_failed")

    def record_delivery(self, shipment_id: str, carrier: str, tracking_number: str) -> None:
        self.record_shipment_dispatched(shipment_id, carrier, tracking_number)
        if self.status is OrderStatus.SHIPPED or (
            self.status is OrderStatus.REQUIRES_ATTENTION
            and self.resume_status is OrderStatus.SHIPPED
        ):
            self.delivered = True
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
        must agree (it refuses once the parcel left)."""
        if self.status in (OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT):
            self.shipping_address = address
            self._record(domain_events.ShippingAddressChanged(self.id))
        elif self.status in _SHIPMENT_REQUESTED:
            self.pending_address = address
            self._record(domain_events.ShippingAddressChangeRequested(self.id))
        else:
            raise OrderNotModifiable(
                f"the shipping address of an order that is {self.status} cannot change"
            )

    def record_address_changed(self, address: Address) -> None:
        self.shipping_address = address
        if self.pending_address == address:
            self.pending_address = None
        self._record(domain_events.ShippingAddressChanged(self.id))

    def record_address_change_refused(self, reason: str) -> None:
        self.pending_address = None
        self._record(domain_events.ShippingAddressChangeRefused(self.id, reason))

    def amend_items(self, lines: list[OrderLine]) -> None:
        """Replace the items of a paid order that has not shipped."""
        if self.status in (OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT):
            raise OrderNotModifiable(
                "stock and payment are still being arranged for this order; try again shortly"
            )
        if self.status not in _SHIPMENT_REQUESTED:
            raise OrderNotModifiable(f"the items of an order that is {self.status} cannot change")
        if self.amendment is not None:
            raise OrderNotModifiable("an earlier change of the items is still under way")
        requested = _merged(lines)
        if requested == [(line.sku, line.quantity) for line in self.lines]:
            return
        self.amendment = Amendment.start(self.id, self.lines, requested)
        self.status_detail = {**self.status_detail, "item_change": {"status": "in_progress"}}
        self._follow(self.amendment)

    # -- replies about a change of items -------------------------------------------

    def record_shipment_held(self) -> None:
        self._amend(lambda amendment: amendment.shipment_held())

    def record_shipment_hold_refused(self, reason: str) -> None:
        self._amend(lambda amendment: amendment.hold_refused(reason))

    def record_reservation_adjusted(self, unit_prices: dict[str, int]) -> None:
        amendment = self.amendment
        if amendment is None:
            self._ignored("inventory.reservation_adjusted")
            return
        lines = amendment.stock_adjusted(unit_prices)
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
        self._resend_current_step()

    def force_compensation(self, operator: str) -> None:
        """An operator settled the failing steps by hand (e.g. voided in the gateway's
        dashboard): consider them done."""
        if self.status is not OrderStatus.REQUIRES_ATTENTION or self.resume_status is None:
            raise OrderNotInAttention(f"the order is {self.status}, nothing to force")
        if self.resume_status is OrderStatus.CANCELLING:
            skipped: tuple[str, ...] = tuple(
                c.value
                for c in (*sorted(self.pending_compensations), *sorted(self.deferred_compensations))
            )
            self.pending_compensations.clear()
            self.deferred_compensations.clear()
        else:
            skipped = self._unsettled_steps()
            self.settlement_forced = True
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
            case OrderStatus.FULFILLING:
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

    def _amend(self, transition: Callable[[Amendment], Ending | None]) -> None:
        """Move the change of items on, if one is under way."""
        if self.amendment is not None:
            self._follow(self.amendment, transition(self.amendment))

    def _follow(self, amendment: Amendment, ending: Ending | None = None) -> None:
        """Take over what the change of items asks for; apply how it ended, if it did."""
        self.events.extend(amendment.events)
        amendment.events.clear()
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

    def _start_cancellation(
        self, reason: str, *, shipment_gone: bool = False, nothing_held: bool = False
    ) -> None:
        """`nothing_held`: the cancellation is the payment's failure, so there is no
        hold to release."""
        shipped = self.status is OrderStatus.SHIPPED
        shipment_may_exist = self.status in _SHIPMENT_REQUESTED and not shipment_gone
        # A reservation or authorization may still be in flight: undo defensively;
        # undoing something that never happened is a harmless no-op downstream.
        undo: set[Compensation] = set()
        if not shipped and not self.stock_committed:
            undo.add(Compensation.RELEASE_STOCK)
        if not nothing_held and self.status is not OrderStatus.PENDING:
            undo.add(Compensation.VOID_PAYMENT)
        self.cancellation_reason = reason
        self.status_reason = reason
        self.amendment = None  # whatever the change reached, compensation undoes it all
        self._move_to(OrderStatus.CANCELLING)
        if shipment_may_exist:
            self.deferred_compensations = undo
            self._request(Compensation.CANCEL_SHIPMENT)
        else:
            self._request(*undo)
        self._finish_cancellation_if_done()

    def _request(self, *compensations: Compensation) -> None:
        self.pending_compensations.update(compensations)
        if compensations:
            self._record(self._compensation_event(set(compensations)))

    def _compensation_event(self, which: set[Compensation]) -> domain_events.CompensationRequested:
        return domain_events.CompensationRequested(
            self.id,
            self.cancellation_reason or "cancelled",
            release_stock=Compensation.RELEASE_STOCK in which,
            void_payment=Compensation.VOID_PAYMENT in which,
            cancel_shipment=Compensation.CANCEL_SHIPMENT in which,
        )

    def _resend_current_step(self) -> None:
        if self.amendment is not None and self.amendment.resend():
            self._follow(self.amendment)
        elif self.status is OrderStatus.CANCELLING:
            self._record(self._compensation_event(self.pending_compensations))
        elif self.status is OrderStatus.SHIPPED:
            self._record(
                domain_events.SettlementRequested(
                    self.id, not self.stock_committed, self.captured_amount == 0
                )
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
        if self._compensating and not self.pending_compensations:
            self.status_reason = self.cancellation_reason
            self.resume_status = None
            self._move_to(OrderStatus.CANCELLED)
            self._record(domain_events.OrderCancelled(self.id, self.cancellation_reason or ""))

    def _settle_if_done(self) -> None:
        waiting = self.status is OrderStatus.SHIPPED or (
            self.status is OrderStatus.REQUIRES_ATTENTION
            and self.resume_status is OrderStatus.SHIPPED
        )
        if not waiting or not self.is_settled:
            return
        if self.status is OrderStatus.REQUIRES_ATTENTION:
            self.status_reason = None
            self.resume_status = None
            self._move_to(OrderStatus.SHIPPED)
        if self.delivered:
            self._move_to(OrderStatus.COMPLETED)
            self._record(domain_events.OrderCompleted(self.id))
        else:
            self.step_changed = True  # settled: nothing left to wait for

    def _needs_attention(self, reason: str) -> None:
        if self.status is OrderStatus.REQUIRES_ATTENTION:
            return
        self.resume_status = self.status
        self.status_reason = reason
        self._move_to(OrderStatus.REQUIRES_ATTENTION)
        pending = tuple(
            c.value for c in sorted(self.pending_compensations | self.deferred_compensations)
        )
        if self.resume_status is OrderStatus.SHIPPED:
            pending = self._unsettled_steps()
        self._record(domain_events.OrderRequiresAttention(self.id, reason, pending))

    def _unsettled_steps(self) -> tuple[str, ...]:
        steps = {"commit_stock": self.stock_committed, "capture_payment": self.captured_amount > 0}
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
