"""Shipments (dispatch notes), one per parcel of an order, and their tracking timelines.

A parcel is the part of an order one stock location sends; its id, the fulfillment
id, is the order service's. Each parcel is dispatched, tracked and delivered on its
own (`Shipment`); what the order asks of all its parcels at once (hold them, change
their lines or address, release them, cancel them) is `OrderParcels`' rule.

Carriers send tracking events late, twice and out of order. The timeline keeps
every distinct event; the shipment's status follows the newest one only, so an
older event never moves it backwards, and nothing moves it after `delivered`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from oms_contracts.common import DEFAULT_LOCATION
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
class ParcelPlan:
    """A parcel as the order wants it: which location sends which lines."""

    fulfillment_id: str
    location: str
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class TrackingEvent:
    status: ShipmentStatus
    location: str | None
    occurred_at: datetime


def parcel_id(order_id: str, fulfillment_id: str | None) -> str:
    """The fulfillment id a message means. None comes from before parcels existed and
    means the order's only parcel, whose id is the order's (as the migration gave
    every shipment that existed then)."""
    return fulfillment_id if fulfillment_id is not None else order_id


# -- events ------------------------------------------------------------------------
# A parcel's events are recorded by its `Shipment` (the message names its fulfillment
# id and location); the answers to what the order asks of all its parcels at once are
# recorded by `OrderParcels`, once, naming the order's lead parcel.


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
class Delivered(ShipmentEvent):
    carrier: str
    tracking_number: str
    delivered_at: datetime


@dataclass(frozen=True)
class Held(ShipmentEvent):
    pass


@dataclass(frozen=True)
class HoldRefused(ShipmentEvent):
    reason: str


@dataclass(frozen=True)
class Updated(ShipmentEvent):
    lines: tuple[Line, ...]
    # Every parcel of the order as it now stands.
    parcels: tuple[ParcelPlan, ...]


@dataclass(frozen=True)
class Released(ShipmentEvent):
    pass


@dataclass(frozen=True)
class AddressChanged(ShipmentEvent):
    address: Address


@dataclass(frozen=True)
class AddressChangeRefused(ShipmentEvent):
    reason: str


# -- one parcel ----------------------------------------------------------------------


@dataclass
class Shipment:
    """The dispatch note of one parcel."""

    id: str
    order_id: str
    fulfillment_id: str
    location: str
    # Empty only for the record of a cancellation that arrived before the shipment.
    lines: list[Line]
    # None for such a record, and once the customer deleted the order.
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
    # The whole order was cancelled (not just this parcel): a parcel of it asked for
    # afterwards is refused. Kept on every parcel row of the order.
    order_cancelled: bool = False
    new_tracking_events: list[TrackingEvent] = field(default_factory=list, repr=False)
    events: list[ShipmentEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def create(
        cls,
        *,
        shipment_id: str,
        order_id: str,
        lines: list[Line],
        address: Address,
        fulfillment_id: str | None = None,
        location: str = DEFAULT_LOCATION,
    ) -> Shipment:
        shipment = cls(
            shipment_id, order_id, parcel_id(order_id, fulfillment_id), location, lines, address
        )
        shipment.events.append(Created(shipment_id, order_id))
        return shipment

    @classmethod
    def cancelled_before_creation(
        cls,
        *,
        shipment_id: str,
        order_id: str,
        fulfillment_id: str | None = None,
        location: str = DEFAULT_LOCATION,
        order_cancelled: bool = False,
    ) -> Shipment:
        """The cancellation overtook the creation request: remember it, so the late
        creation request is refused instead of shipping a cancelled parcel."""
        shipment = cls(
            shipment_id,
            order_id,
            parcel_id(order_id, fulfillment_id),
            location,
            [],
            None,
            status=ShipmentStatus.CANCELLED,
            order_cancelled=order_cancelled,
        )
        shipment.events.append(Cancelled(shipment_id, order_id))
        return shipment

    @property
    def in_warehouse(self) -> bool:
        """Not dispatched, failed or cancelled: its lines and address may change."""
        return self.status in (ShipmentStatus.CREATED, ShipmentStatus.ON_HOLD)

    @property
    def is_cancelled(self) -> bool:
        return self.status is ShipmentStatus.CANCELLED

    def asked_for_again(self, location: str) -> None:
        """A creation request for a parcel that exists gets the notices that tell where
        it stands; one that a cancellation overtook learns where it would have left
        from, for its answer."""
        if not self.lines:
            self.location = location
        self.repeat_notices()

    def cancel(self) -> None:
        """Stop the shipment if it has not left; otherwise say that it has."""
        if self.in_warehouse:
            self.status = ShipmentStatus.CANCELLED
            self.events.append(Cancelled(self.id, self.order_id))
        else:
            self.repeat_notices()

    def hold(self) -> None:
        """Keep it in the warehouse while the order's items change (the order's
        parcels decide whether they can: `OrderParcels.hold`)."""
        if self.status is ShipmentStatus.CREATED:
            self.status = ShipmentStatus.ON_HOLD

    def release(self) -> None:
        if self.status is ShipmentStatus.ON_HOLD:
            self.status = ShipmentStatus.CREATED

    def replan(self, plan: ParcelPlan, address: Address | None) -> None:
        """New lines for a held (or cancelled, never dispatched) parcel, which is then
        ready for dispatch again; a cancelled one is announced as created anew."""
        revived = self.is_cancelled
        self.lines = list(plan.lines)
        self.location = plan.location
        self.status = ShipmentStatus.CREATED
        if revived:
            self.address = address
            self.order_cancelled = False
            self.events.append(Created(self.id, self.order_id))

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

    def why_it_cannot_change(self) -> str:
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


# -- every parcel of an order ------------------------------------------------------------


def new_shipment_id() -> str:
    return str(uuid.uuid4())


@dataclass
class OrderParcels:
    """Every parcel of one order (cancelled ones included), in the order they were
    asked for. What the order asks of all of them at once is decided here: hold them
    all or none, give them new lines (and new parcels), release them, send them
    elsewhere, cancel them; each is answered once, for the order."""

    order_id: str
    parcels: list[Shipment]
    new_id: Callable[[], str] = field(default=new_shipment_id, repr=False, compare=False)
    events: list[ShipmentEvent] = field(default_factory=list, compare=False, repr=False)

    def parcel(self, fulfillment_id: str) -> Shipment | None:
        return next((p for p in self.parcels if p.fulfillment_id == fulfillment_id), None)

    @property
    def cancelled(self) -> bool:
        """The whole order was cancelled: nothing more of it ships."""
        return any(parcel.order_cancelled for parcel in self.parcels)

    @property
    def live(self) -> list[Shipment]:
        """The parcels that were not cancelled."""
        return [parcel for parcel in self.parcels if not parcel.is_cancelled]

    @property
    def lead(self) -> Shipment:
        """The parcel an answer about all of them names: the first one not cancelled
        (the first one if all were)."""
        live = self.live
        return live[0] if live else self.parcels[0]

    def ask_for(
        self, *, fulfillment_id: str, location: str, lines: list[Line], address: Address
    ) -> Shipment | None:
        """A creation request: the new parcel (None if it existed already, or if the
        order was cancelled: then it is refused). While the order's parcels are held
        for an item change, a new one is held with them."""
        existing = self.parcel(fulfillment_id)
        if existing is not None:
            existing.asked_for_again(location)
            return None
        if self.cancelled:
            self.parcels.append(self._cancelled_parcel(fulfillment_id, location))
            return None
        held = any(p.status is ShipmentStatus.ON_HOLD for p in self.parcels)
        parcel = Shipment.create(
            shipment_id=self.new_id(),
            order_id=self.order_id,
            fulfillment_id=fulfillment_id,
            location=location,
            lines=lines,
            address=address,
        )
        if held:
            parcel.hold()
        self.parcels.append(parcel)
        return parcel

    def cancel(self, fulfillment_id: str | None) -> None:
        """Cancel one parcel, or (None) every parcel of the order; each answers that it
        is cancelled, or that it left already. A parcel not asked for yet is
        remembered as cancelled, so its late creation request is refused."""
        if fulfillment_id is not None:
            parcel = self.parcel(fulfillment_id)
            if parcel is None:
                self.parcels.append(self._cancelled_parcel(fulfillment_id, DEFAULT_LOCATION))
            else:
                parcel.cancel()
            return
        if not self.parcels:
            # Nothing asked for yet: the order's only parcel stands for all of them.
            self.parcels.append(self._cancelled_parcel(self.order_id, DEFAULT_LOCATION))
        else:
            for parcel in self.parcels:
                parcel.cancel()
        for parcel in self.parcels:
            parcel.order_cancelled = True

    def hold(self) -> None:
        """Keep every parcel in the warehouse while the order's items change: all of
        them, or none if any already left (or failed)."""
        self._require_parcels()
        refusal = self._why_they_cannot_change()
        if refusal is not None:
            self.events.append(HoldRefused(self.lead.id, self.order_id, refusal))
            return
        for parcel in self.live:
            parcel.hold()
        self.events.append(Held(self.lead.id, self.order_id))

    def update(self, lines: Sequence[Line], plans: Sequence[ParcelPlan]) -> None:
        """The order's new items, held: its parcels become exactly `plans` (no plans:
        one parcel with `lines`, the order's only one). Parcels kept get their new
        lines, new ones are created, the others cancelled; the hold ends. Applied
        only while every parcel is held; answered then, or when the parcels are
        already as planned (a repeated request), even if some left since."""
        self._require_parcels()
        plans = tuple(plans) or (self._only_parcel(lines),)
        live = self.live
        if not (live and all(p.status is ShipmentStatus.ON_HOLD for p in live)):
            if self._stands_as(plans):
                self.events.append(Updated(self.lead.id, self.order_id, tuple(lines), plans))
            return
        address = live[0].address
        assert address is not None, "a parcel in the warehouse has its address"
        wanted = {plan.fulfillment_id for plan in plans}
        for parcel in live:
            if parcel.fulfillment_id not in wanted:
                parcel.cancel()
        for plan in plans:
            existing = self.parcel(plan.fulfillment_id)
            if existing is not None:
                existing.replan(plan, address)
                continue
            parcel = Shipment.create(
                shipment_id=self.new_id(),
                order_id=self.order_id,
                fulfillment_id=plan.fulfillment_id,
                location=plan.location,
                lines=list(plan.lines),
                address=address,
            )
            self.parcels.append(parcel)
        self.events.append(Updated(self.lead.id, self.order_id, tuple(lines), plans))

    def release(self) -> None:
        """The item change was given up: every held parcel may be dispatched again."""
        self._require_parcels()
        for parcel in self.parcels:
            parcel.release()
        self.events.append(Released(self.lead.id, self.order_id))

    def change_address(self, address: Address) -> None:
        """Send every parcel elsewhere, unless one already left (or will never leave)."""
        self._require_parcels()
        refusal = self._why_they_cannot_change()
        if refusal is not None:
            self.events.append(AddressChangeRefused(self.lead.id, self.order_id, refusal))
            return
        for parcel in self.live:
            parcel.address = address
        self.events.append(AddressChanged(self.lead.id, self.order_id, address))

    def erase_personal_data(self) -> None:
        for parcel in self.parcels:
            parcel.erase_personal_data()

    def _require_parcels(self) -> None:
        if not self.parcels:
            # The creation request is still on its way (both were sent moments
            # apart): refused, so that the request is retried after a delay.
            raise NotCreatedYet(f"no parcel of order {self.order_id} yet")

    def _why_they_cannot_change(self) -> str | None:
        """Why the parcels cannot be held or sent elsewhere (None: they can). One that
        left is the reason first; with none left at all, the cancellation is."""
        live = self.live
        if not live:
            return self.lead.why_it_cannot_change()
        stuck = [parcel for parcel in live if not parcel.in_warehouse]
        if not stuck:
            return None
        left = [parcel for parcel in stuck if parcel.dispatched_at is not None]
        return (left or stuck)[0].why_it_cannot_change()

    def _only_parcel(self, lines: Sequence[Line]) -> ParcelPlan:
        """The plan a request without parcels means: the order's only parcel (the one
        not cancelled, if there is exactly one; else the one of the order's id at the
        default location)."""
        live = self.live
        if len(live) == 1:
            return ParcelPlan(live[0].fulfillment_id, live[0].location, tuple(lines))
        return ParcelPlan(self.order_id, DEFAULT_LOCATION, tuple(lines))

    def _stands_as(self, plans: Sequence[ParcelPlan]) -> bool:
        """The parcels not cancelled are exactly `plans` (whether they left since)."""
        live = self.live
        current = {(p.fulfillment_id, p.location, tuple(p.lines)) for p in live}
        wanted = {(plan.fulfillment_id, plan.location, plan.lines) for plan in plans}
        return current == wanted and len(live) == len(plans)

    def _cancelled_parcel(self, fulfillment_id: str, location: str) -> Shipment:
        return Shipment.cancelled_before_creation(
            shipment_id=self.new_id(),
            order_id=self.order_id,
            fulfillment_id=fulfillment_id,
            location=location,
            order_cancelled=self.cancelled,
        )
