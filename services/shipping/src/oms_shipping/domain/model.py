"""A shipment (dispatch note) of one order and its tracking timeline.

Carriers send tracking events late, twice and out of order. The timeline keeps
every distinct event; the shipment's status follows the newest one only, so an
older event never moves it backwards, and nothing moves it after `delivered`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from oms_contracts.reasons import StatusReason


class ShipmentStatus(StrEnum):
    CREATED = "created"
    # Kept in the warehouse while the order's items change; cannot be dispatched.
    ON_HOLD = "on_hold"
    DISPATCHED = "dispatched"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    FAILED = "failed"
    CANCELLED = "cancelled"


TRACKING_STATUSES = frozenset(
    {
        ShipmentStatus.IN_TRANSIT,
        ShipmentStatus.OUT_FOR_DELIVERY,
        ShipmentStatus.DELIVERED,
        ShipmentStatus.EXCEPTION,
    }
)


class ShippingError(Exception):
    """Something shipping refuses; `code` says what (the API answers by it: see
    `api/problems.py`)."""

    code = "shipping_error"


class NotDispatched(ShippingError):
    code = "not_dispatched"


class NotDispatchable(ShippingError):
    code = "not_dispatchable"


class NotFailable(ShippingError):
    code = "not_failable"


class ImplausibleEventTime(ShippingError):
    """A carrier event dated before the parcel left or in the future: a broken or
    forged clock, not something to put on the timeline."""

    code = "implausible_event_time"


class NotCreatedYet(ShippingError):
    """A request about a shipment whose creation is still on its way; retried."""

    code = "not_created_yet"


# How far the carrier's clock may be off ours (the same tolerance as the webhook
# signature's timestamp): events up to this much before dispatch or after now count.
CLOCK_SKEW = timedelta(minutes=5)

# Nothing a carrier reports moves a shipment out of these.
_FINAL = frozenset({ShipmentStatus.DELIVERED, ShipmentStatus.FAILED, ShipmentStatus.CANCELLED})


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int


@dataclass(frozen=True)
class Address:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None


@dataclass(frozen=True)
class TrackingEvent:
    status: ShipmentStatus
    location: str | None
    occurred_at: datetime


@dataclass(frozen=True)
class ShipmentEvent:
    shipment_id: str
    order_id: str


@dataclass(frozen=True)
class Created(ShipmentEvent):
    pass


@dataclass(frozen=True)
class Dispatched(ShipmentEvent):
    carrier: str
    tracking_number: str


@dataclass(frozen=True)
class Cancelled(ShipmentEvent):
    pass


@dataclass(frozen=True)
class Failed(ShipmentEvent):
    reason: str


@dataclass(frozen=True)
class Held(ShipmentEvent):
    pass


@dataclass(frozen=True)
class HoldRefused(ShipmentEvent):
    reason: str


@dataclass(frozen=True)
class Updated(ShipmentEvent):
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Released(ShipmentEvent):
    pass


@dataclass(frozen=True)
class AddressChanged(ShipmentEvent):
    address: Address


@dataclass(frozen=True)
class AddressChangeRefused(ShipmentEvent):
    reason: str


@dataclass(frozen=True)
class Delivered(ShipmentEvent):
    carrier: str
    tracking_number: str
    delivered_at: datetime


@dataclass
class Shipment:
    id: str
    order_id: str
    lines: list[Line]
    # None only for the record of a cancellation that arrived before the shipment.
    address: Address | None
    status: ShipmentStatus = ShipmentStatus.CREATED
    carrier: str | None = None
    tracking_number: str | None = None
    dispatched_at: datetime | None = None
    delivered_at: datetime | None = None
    # Time of the newest carrier event applied; the carrier's clock, not ours, so
    # our dispatch time is deliberately not compared with it.
    last_event_at: datetime | None = None
    failure_reason: str | None = None
    new_tracking_events: list[TrackingEvent] = field(default_factory=list, repr=False)
    events: list[ShipmentEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def create(
        cls, *, shipment_id: str, order_id: str, lines: list[Line], address: Address
    ) -> Shipment:
        shipment = cls(shipment_id, order_id, lines, address)
        shipment.events.append(Created(shipment_id, order_id))
        return shipment

    @classmethod
    def cancelled_before_creation(cls, *, shipment_id: str, order_id: str) -> Shipment:
        """The cancellation overtook the creation request: remember it, so the late
        creation request is refused instead of shipping a cancelled order."""
        shipment = cls(shipment_id, order_id, [], None, status=ShipmentStatus.CANCELLED)
        shipment.events.append(Cancelled(shipment_id, order_id))
        return shipment

    def cancel(self) -> None:
        """Stop the shipment if it has not left; otherwise say that it has."""
        if self.status in (ShipmentStatus.CREATED, ShipmentStatus.ON_HOLD):
            self.status = ShipmentStatus.CANCELLED
            self.events.append(Cancelled(self.id, self.order_id))
        else:
            self.repeat_notices()

    def hold(self) -> None:
        """Keep it in the warehouse while the items change; refused once it left."""
        if self.status is ShipmentStatus.ON_HOLD:
            self.events.append(Held(self.id, self.order_id))
        elif self.status is ShipmentStatus.CREATED:
            self.status = ShipmentStatus.ON_HOLD
            self.events.append(Held(self.id, self.order_id))
        else:
            self.events.append(HoldRefused(self.id, self.order_id, self._why_it_cannot_change()))

    def update_lines(self, lines: list[Line]) -> None:
        """The new items of a held shipment; the hold ends."""
        if self.status is ShipmentStatus.ON_HOLD:
            self.lines = lines
            self.status = ShipmentStatus.CREATED
        if self.lines == lines:
            self.events.append(Updated(self.id, self.order_id, tuple(lines)))

    def release(self) -> None:
        if self.status is ShipmentStatus.ON_HOLD:
            self.status = ShipmentStatus.CREATED
        self.events.append(Released(self.id, self.order_id))

    def change_address(self, address: Address) -> None:
        """Send it elsewhere, unless it already left (or will never leave)."""
        if self.status not in (ShipmentStatus.CREATED, ShipmentStatus.ON_HOLD):
            self.events.append(
                AddressChangeRefused(self.id, self.order_id, self._why_it_cannot_change())
            )
            return
        self.address = address
        self.events.append(AddressChanged(self.id, self.order_id, address))

    def erase_personal_data(self) -> None:
        """The customer deleted the order: forget where it went."""
        self.address = None

    def fail(self, reason: str) -> None:
        """It cannot be shipped (e.g. a destination we do not serve, damaged goods) or
        it was lost on the way."""
        if self.status is ShipmentStatus.FAILED:
            return
        if self.status in (ShipmentStatus.DELIVERED, ShipmentStatus.CANCELLED):
            raise NotFailable(f"a {self.status} shipment cannot fail")
        self.status = ShipmentStatus.FAILED
        self.failure_reason = reason
        self.events.append(Failed(self.id, self.order_id, reason))

    def dispatch(self, *, carrier: str, tracking_number: str, now: datetime) -> None:
        """The parcel left the warehouse. Dispatching twice changes nothing."""
        if self.status is not ShipmentStatus.CREATED:
            if self.dispatched_at is not None:
                return
            raise NotDispatchable(f"a {self.status} shipment cannot be dispatched")
        self.status = ShipmentStatus.DISPATCHED
        self.carrier = carrier
        self.tracking_number = tracking_number
        self.dispatched_at = now
        self.events.append(Dispatched(self.id, self.order_id, carrier, tracking_number))

    def record_tracking(self, event: TrackingEvent, *, seen_before: bool, now: datetime) -> None:
        """Apply a carrier event. `seen_before`: the exact event is already on the
        timeline (a redelivered webhook), so nothing changes. An event dated before
        the dispatch or after `now` (beyond the clock skew allowed) is refused."""
        if event.status not in TRACKING_STATUSES:
            raise ShippingError(f"{event.status} is not a carrier tracking status")
        if self.dispatched_at is None:
            raise NotDispatched("the shipment has not been dispatched yet")
        if event.occurred_at < self.dispatched_at - CLOCK_SKEW:
            raise ImplausibleEventTime(
                f"occurred_at {event.occurred_at.isoformat()} is before the parcel was "
                f"dispatched ({self.dispatched_at.isoformat()})"
            )
        if event.occurred_at > now + CLOCK_SKEW:
            raise ImplausibleEventTime(
                f"occurred_at {event.occurred_at.isoformat()} is in the future"
            )
        if seen_before:
            return
        self.new_tracking_events.append(event)
        if self.status in _FINAL:
            return
        is_older = self.last_event_at is not None and event.occurred_at < self.last_event_at
        if is_older and event.status is not ShipmentStatus.DELIVERED:
            return  # older than what we know: timeline only (delivered is final anyway)
        self.status = event.status
        self.last_event_at = event.occurred_at
        if event.status is ShipmentStatus.DELIVERED:
            assert self.carrier is not None and self.tracking_number is not None
            self.delivered_at = event.occurred_at
            self.events.append(
                Delivered(
                    self.id, self.order_id, self.carrier, self.tracking_number, event.occurred_at
                )
            )

    def _why_it_cannot_change(self) -> str:
        return StatusReason.ALREADY_DISPATCHED if self.dispatched_at else f"shipment_{self.status}"

    def repeat_notices(self) -> None:
        """A repeated request gets the notices that tell where the shipment stands."""
        if self.status is ShipmentStatus.CANCELLED:
            self.events.append(Cancelled(self.id, self.order_id))
            return
        self.events.append(Created(self.id, self.order_id))
        if self.carrier is not None and self.tracking_number is not None:
            self.events.append(
                Dispatched(self.id, self.order_id, self.carrier, self.tracking_number)
            )
        if self.status is ShipmentStatus.FAILED:
            self.events.append(Failed(self.id, self.order_id, self.failure_reason or "failed"))
