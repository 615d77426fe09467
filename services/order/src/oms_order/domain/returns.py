"""Returns: a customer sends shipped goods back; what arrives is refunded.

A return is its own aggregate (an order may have several), orchestrated like the
order saga: approved (at once, or by an admin) -> shipping issues a label -> the
warehouse receives the parcel -> inventory takes the goods back (resellable units on
hand again at the location they left from) and payment refunds what arrived at the
prices the order paid. A refund the gateway keeps refusing parks the return in
`requires_attention` for an operator, as the order saga does.

What may be returned is decided here from what the order shipped (per SKU and
location, with the price paid and when it left) and what the order's other returns
already hold: never more than shipped, also when requests race (the caller holds the
order's row lock while it asks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from oms_order.domain.values import Address


@dataclass(frozen=True)
class ReturnPolicy:
    """The shop's rules for returns (from the settings)."""

    window: timedelta = timedelta(days=30)
    auto_approve: bool = True
    # How long an approved return's parcel may take to arrive.
    receive_within: timedelta = timedelta(days=30)
    # First wait for a refund's answer; doubles per retry, `max_attempts` in all.
    refund_retry: timedelta = timedelta(seconds=15)
    max_attempts: int = 5


class ReturnStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    RECEIVED = "received"
    REFUNDED = "refunded"
    REQUIRES_ATTENTION = "requires_attention"


# Before the parcel is received: the customer may still call it off.
OPEN_STATUSES = frozenset({ReturnStatus.REQUESTED, ReturnStatus.APPROVED})
# Statuses whose units no other return may claim (open ones by what they announced,
# the rest by what arrived).
_HOLDING = frozenset(
    {
        ReturnStatus.REQUESTED,
        ReturnStatus.APPROVED,
        ReturnStatus.RECEIVED,
        ReturnStatus.REFUNDED,
        ReturnStatus.REQUIRES_ATTENTION,
    }
)


class Condition(StrEnum):
    RESELLABLE = "resellable"
    DAMAGED = "damaged"


class ReturnError(Exception):
    """A rule refused the request; `code` is the machine-readable reason."""

    code = "return_error"

    def __init__(self, message: str, *, skus: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.skus = tuple(sorted(set(skus)))

    @property
    def extensions(self) -> dict[str, object]:
        """Added to the problem document: the SKUs the refusal is about."""
        return {"skus": list(self.skus)} if self.skus else {}


class ReturnNotAllowed(ReturnError):
    code = "return_not_allowed"


class OrderNotShipped(ReturnNotAllowed):
    code = "order_not_shipped"


class ReturnWindowClosed(ReturnNotAllowed):
    code = "return_window_closed"


class ExceedsReturnable(ReturnNotAllowed):
    code = "exceeds_returnable"


class InvalidReturn(ReturnError):
    code = "invalid_return"


class ReturnNotInState(ReturnError):
    """The action does not apply to the return as it stands."""

    code = "return_state_conflict"


@dataclass(frozen=True)
class ShippedUnits:
    """Units of a SKU one parcel took to the customer, at the price the order paid."""

    sku: str
    location: str
    quantity: int
    unit_price: int
    shipped_at: datetime


@dataclass
class ReturnLine:
    sku: str
    location: str
    quantity: int
    unit_price: int
    resellable: int = 0
    damaged: int = 0

    @property
    def received_quantity(self) -> int:
        return self.resellable + self.damaged


@dataclass(frozen=True)
class ReceivedUnits:
    sku: str
    quantity: int
    condition: Condition


@dataclass(frozen=True)
class ReturnedStock:
    """Where received units go back to, and in which state."""

    sku: str
    location: str
    quantity: int
    condition: Condition


# -- events ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnEvent:
    return_id: str
    order_id: str


@dataclass(frozen=True)
class ReturnRequested(ReturnEvent):
    reason: str


@dataclass(frozen=True)
class ReturnApproved(ReturnEvent):
    approved_by: str


@dataclass(frozen=True)
class ReturnRejected(ReturnEvent):
    reason: str
    rejected_by: str


@dataclass(frozen=True)
class ReturnCancelled(ReturnEvent):
    reason: str
    label_issued: bool


@dataclass(frozen=True)
class ReturnLabelCreated(ReturnEvent):
    return_tracking_number: str


@dataclass(frozen=True)
class ReturnReceived(ReturnEvent):
    refund_amount: int
    after_cancellation: bool


@dataclass(frozen=True)
class RefundRequested(ReturnEvent):
    amount: int
    # Changes when an operator retries after a refusal: a refused refund moved no
    # money, so the next attempt may use a new idempotency key at the gateway.
    attempt: int


@dataclass(frozen=True)
class StockReturned(ReturnEvent):
    pass


@dataclass(frozen=True)
class ReturnRefunded(ReturnEvent):
    amount: int


@dataclass(frozen=True)
class ReturnRequiresAttention(ReturnEvent):
    reason: str


@dataclass(frozen=True)
class ReturnRetried(ReturnEvent):
    operator: str


@dataclass(frozen=True)
class ReturnForced(ReturnEvent):
    operator: str


# -- the aggregate ---------------------------------------------------------------------


@dataclass
class Return:
    id: str
    order_id: str
    customer_id: str
    reason: str
    lines: list[ReturnLine]
    currency: str
    created_at: datetime
    updated_at: datetime
    status: ReturnStatus = ReturnStatus.REQUESTED
    status_reason: str | None = None
    return_tracking_number: str | None = None
    refund_amount: int | None = None
    refunded_amount: int = 0
    stock_returned: bool = False
    refund_attempt: int = 0
    deadline_at: datetime | None = None
    # Where the return label picks the parcel up (the order's shipping address).
    pickup_address: Address | None = None
    events: list[ReturnEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def request(
        cls,
        *,
        return_id: str,
        order_id: str,
        customer_id: str,
        currency: str,
        items: Mapping[str, int],
        reason: str,
        shipped: Iterable[ShippedUnits],
        other_returns: Iterable[Return],
        now: datetime,
        window: timedelta,
        pickup_address: Address | None = None,
    ) -> Return:
        """A return of `items` (SKU -> units), if the order shipped them within
        `window` and no other return holds them. Raises a ReturnNotAllowed naming why."""
        if not items or any(quantity <= 0 for quantity in items.values()):
            raise InvalidReturn("a return needs at least one line with a positive quantity")
        by_parcel: dict[tuple[str, str], ShippedUnits] = {}
        for units in shipped:
            key = (units.sku, units.location)
            earlier = by_parcel.get(key)
            if earlier is not None:
                units = ShippedUnits(
                    units.sku,
                    units.location,
                    earlier.quantity + units.quantity,
                    units.unit_price,
                    max(earlier.shipped_at, units.shipped_at),
                )
            by_parcel[key] = units
        if not by_parcel:
            raise OrderNotShipped("nothing of this order has shipped yet")
        held = _held(other_returns)
        lines: list[ReturnLine] = []
        too_many: list[str] = []
        too_late: list[str] = []
        for sku, wanted in items.items():
            # Most recent parcels first: they are the likeliest to be within the window.
            parcels = sorted(
                (units for units in by_parcel.values() if units.sku == sku),
                key=lambda units: units.shipped_at,
                reverse=True,
            )
            left = wanted
            late_units = 0
            for units in parcels:
                free = units.quantity - held.get((sku, units.location), 0)
                if free <= 0:
                    continue
                if now - units.shipped_at > window:
                    late_units += free
                    continue
                take = min(free, left)
                lines.append(ReturnLine(sku, units.location, take, units.unit_price))
                left -= take
                if left == 0:
                    break
            if left:
                (too_late if late_units >= left else too_many).append(sku)
        if too_many:
            raise ExceedsReturnable(
                "more than was shipped and not yet returned: " + ", ".join(sorted(too_many)),
                skus=too_many,
            )
        if too_late:
            raise ReturnWindowClosed(
                "shipped longer ago than returns are accepted: " + ", ".join(sorted(too_late)),
                skus=too_late,
            )
        created = cls(
            id=return_id,
            order_id=order_id,
            customer_id=customer_id,
            reason=reason,
            lines=lines,
            currency=currency,
            created_at=now,
            updated_at=now,
            pickup_address=pickup_address,
        )
        created._record(ReturnRequested(return_id, order_id, reason))
        return created

    # -- queries -------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def quantities(self) -> dict[str, int]:
        """SKU -> units announced."""
        totals: dict[str, int] = {}
        for line in self.lines:
            totals[line.sku] = totals.get(line.sku, 0) + line.quantity
        return totals

    def holds(self) -> dict[tuple[str, str], int]:
        """(SKU, location) -> units no other return may claim."""
        if self.status not in _HOLDING:
            return {}
        received = not self.is_open
        holding: dict[tuple[str, str], int] = {}
        for line in self.lines:
            units = line.received_quantity if received else line.quantity
            holding[(line.sku, line.location)] = holding.get((line.sku, line.location), 0) + units
        return holding

    def returned_stock(self) -> list[ReturnedStock]:
        stock: list[ReturnedStock] = []
        for line in self.lines:
            if line.resellable:
                stock.append(
                    ReturnedStock(line.sku, line.location, line.resellable, Condition.RESELLABLE)
                )
            if line.damaged:
                stock.append(
                    ReturnedStock(line.sku, line.location, line.damaged, Condition.DAMAGED)
                )
        return stock

    # -- staff and customer decisions ------------------------------------------------

    def approve(self, by: str, now: datetime, receive_within: timedelta) -> None:
        if self.status is not ReturnStatus.REQUESTED:
            raise ReturnNotInState(f"a return that is {self.status} cannot be approved")
        self._move_to(ReturnStatus.APPROVED, now)
        self.deadline_at = now + receive_within
        self._record(ReturnApproved(self.id, self.order_id, by))

    def reject(self, reason: str, by: str, now: datetime) -> None:
        if self.status is not ReturnStatus.REQUESTED:
            raise ReturnNotInState(f"a return that is {self.status} cannot be rejected")
        self.status_reason = reason
        self._move_to(ReturnStatus.REJECTED, now)
        self.deadline_at = None
        self._record(ReturnRejected(self.id, self.order_id, reason, by))

    def cancel(self, now: datetime, reason: str = "customer_request") -> None:
        if self.status is ReturnStatus.CANCELLED:
            return
        if not self.is_open:
            raise ReturnNotInState(f"a return that is {self.status} cannot be cancelled")
        self._call_off(reason, now)

    def erase_personal_data(self) -> None:
        """The order's personal data goes: so does the pickup address."""
        self.pickup_address = None

    def deadline_passed(self, now: datetime, refund_retry: timedelta, max_attempts: int) -> None:
        """The parcel never arrived, or the refund was never answered."""
        if self.status is ReturnStatus.APPROVED:
            self._call_off("return_not_received", now)
        elif self.status is ReturnStatus.RECEIVED:
            if self.refund_attempt + 1 >= max_attempts:
                self._needs_attention("refund_timeout", now)
            else:
                # Same attempt number: an unanswered refund may have gone through.
                self.deadline_at = now + refund_retry * (2 ** min(self.refund_attempt, 10))
                self._request_refund()

    # -- replies from the other services ---------------------------------------------

    def record_label(self, tracking_number: str, now: datetime) -> None:
        if self.return_tracking_number == tracking_number:
            return
        self.return_tracking_number = tracking_number
        self.updated_at = now
        self._record(ReturnLabelCreated(self.id, self.order_id, tracking_number))

    def record_received(
        self, received: Iterable[ReceivedUnits], now: datetime, refund_retry: timedelta
    ) -> None:
        """The warehouse took the parcel in. Also after a cancellation that crossed
        it on the way: goods that arrived are refunded whatever the return said."""
        if self.status not in (*OPEN_STATUSES, ReturnStatus.CANCELLED):
            return  # a redelivered receipt
        after_cancellation = self.status is ReturnStatus.CANCELLED
        for units in received:
            self._take_in(units)
        self.refund_amount = sum(line.received_quantity * line.unit_price for line in self.lines)
        self.status_reason = None
        self._move_to(ReturnStatus.RECEIVED, now)
        self.deadline_at = now + refund_retry
        self._record(ReturnReceived(self.id, self.order_id, self.refund_amount, after_cancellation))
        if self.refund_amount == 0:
            self._move_to(ReturnStatus.REFUNDED, now)
            self.deadline_at = None
            self._record(ReturnRefunded(self.id, self.order_id, 0))
        else:
            self._request_refund()

    def record_stock_returned(self) -> None:
        if not self.stock_returned:
            self.stock_returned = True
            self._record(StockReturned(self.id, self.order_id))

    def record_refunded(self, amount: int, now: datetime) -> None:
        if self.status not in (ReturnStatus.RECEIVED, ReturnStatus.REQUIRES_ATTENTION):
            return
        self.refunded_amount = amount
        self.status_reason = None
        self._move_to(ReturnStatus.REFUNDED, now)
        self.deadline_at = None
        self._record(ReturnRefunded(self.id, self.order_id, amount))

    def record_refund_failed(self, error: str, now: datetime) -> None:
        if self.status is ReturnStatus.RECEIVED:
            self._needs_attention(f"refund_failed: {error}", now)

    # -- operators ----------------------------------------------------------------------

    def retry(self, operator: str, now: datetime, refund_retry: timedelta) -> None:
        if self.status is not ReturnStatus.REQUIRES_ATTENTION:
            raise ReturnNotInState(f"the return is {self.status}, nothing to retry")
        self._record(ReturnRetried(self.id, self.order_id, operator))
        self.refund_attempt += 1
        self.status_reason = None
        self._move_to(ReturnStatus.RECEIVED, now)
        self.deadline_at = now + refund_retry
        self._request_refund()

    def force(self, operator: str, now: datetime) -> None:
        """An operator refunded by hand (in the gateway's dashboard)."""
        if self.status is not ReturnStatus.REQUIRES_ATTENTION:
            raise ReturnNotInState(f"the return is {self.status}, nothing to force")
        self._record(ReturnForced(self.id, self.order_id, operator))
        self.refunded_amount = self.refund_amount or 0
        self.status_reason = None
        self._move_to(ReturnStatus.REFUNDED, now)
        self.deadline_at = None
        self._record(ReturnRefunded(self.id, self.order_id, self.refunded_amount))

    # -- internals ------------------------------------------------------------------------

    def _take_in(self, units: ReceivedUnits) -> None:
        left = units.quantity
        for line in self.lines:
            if line.sku != units.sku:
                continue
            take = min(left, line.quantity - line.received_quantity)
            if units.condition is Condition.RESELLABLE:
                line.resellable += take
            else:
                line.damaged += take
            left -= take
            if left == 0:
                return
        if left:
            raise InvalidReturn(
                f"more {units.sku} received than the return announced", skus=[units.sku]
            )

    def _call_off(self, reason: str, now: datetime) -> None:
        label_issued = self.status is ReturnStatus.APPROVED
        self.status_reason = reason
        self._move_to(ReturnStatus.CANCELLED, now)
        self.deadline_at = None
        self._record(ReturnCancelled(self.id, self.order_id, reason, label_issued))

    def _request_refund(self) -> None:
        self._record(
            RefundRequested(self.id, self.order_id, self.refund_amount or 0, self.refund_attempt)
        )

    def _needs_attention(self, reason: str, now: datetime) -> None:
        self.status_reason = reason
        self._move_to(ReturnStatus.REQUIRES_ATTENTION, now)
        self.deadline_at = None
        self._record(ReturnRequiresAttention(self.id, self.order_id, reason))

    def _move_to(self, status: ReturnStatus, now: datetime) -> None:
        self.status = status
        self.updated_at = now

    def _record(self, event: ReturnEvent) -> None:
        self.events.append(event)


def validate_receipt(announced: Mapping[str, int], received: Iterable[ReceivedUnits]) -> None:
    """What the warehouse may book in for a return: SKUs it announced, no more units
    than announced (less is fine), at least one unit in all."""
    totals: dict[str, int] = {}
    for units in received:
        if units.quantity < 0:
            raise InvalidReturn("received quantities cannot be negative", skus=[units.sku])
        totals[units.sku] = totals.get(units.sku, 0) + units.quantity
    unknown = [sku for sku in totals if sku not in announced]
    if unknown:
        raise InvalidReturn("the return announced none of " + ", ".join(unknown), skus=unknown)
    over = [sku for sku, quantity in totals.items() if quantity > announced[sku]]
    if over:
        raise InvalidReturn("more received than announced: " + ", ".join(over), skus=over)
    if sum(totals.values()) == 0:
        raise InvalidReturn("nothing was received; cancel the return instead")


def _held(returns: Iterable[Return]) -> dict[tuple[str, str], int]:
    held: dict[tuple[str, str], int] = {}
    for other in returns:
        for key, units in other.holds().items():
            held[key] = held.get(key, 0) + units
    return held
