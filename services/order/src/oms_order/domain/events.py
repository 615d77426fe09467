"""What happened to an order. Recorded by the aggregate; its unit of work turns them
into outgoing messages and history entries when it commits (`handlers/outgoing.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class OrderEvent:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced(OrderEvent):
    created_at: datetime


@dataclass(frozen=True)
class OrderAwaitingPayment(OrderEvent):
    total: int
    currency: str


@dataclass(frozen=True)
class OrderRejected(OrderEvent):
    reason: str
    skus: tuple[str, ...]


@dataclass(frozen=True)
class OrderPaid(OrderEvent):
    payment_id: str


@dataclass(frozen=True)
class OrderFulfilling(OrderEvent):
    shipment_id: str


@dataclass(frozen=True)
class ParcelDispatched(OrderEvent):
    """One parcel left its warehouse: its stock is committed at its location and
    its amount captured."""

    fulfillment_id: str
    location: str
    amount: int
    carrier: str
    tracking_number: str


@dataclass(frozen=True)
class OrderPartiallyShipped(OrderEvent):
    """A parcel left; others are still in their warehouses."""

    fulfillment_id: str
    location: str
    carrier: str
    tracking_number: str


@dataclass(frozen=True)
class OrderShipped(OrderEvent):
    carrier: str
    tracking_number: str


@dataclass(frozen=True)
class OrderCompleted(OrderEvent):
    pass


@dataclass(frozen=True)
class CompensationRequested(OrderEvent):
    """Undo earlier saga steps: stop the shipment, return the money, free the stock."""

    reason: str
    release_stock: bool = False
    void_payment: bool = False
    cancel_shipment: bool = False
    # The parcels shipping is asked to stop, and what the payment keeps (the parcels
    # that left; 0: everything goes back).
    cancel_parcels: tuple[str, ...] = ()
    keep_amount: int = 0


@dataclass(frozen=True)
class ParcelSettlement:
    """What a parcel that left still needs: its stock committed, its amount captured."""

    fulfillment_id: str
    location: str
    amount: int
    commit_stock: bool
    capture_payment: bool


@dataclass(frozen=True)
class SettlementRequested(OrderEvent):
    """(Re)ask for the stock decrements and captures of the parcels that left."""

    parcels: tuple[ParcelSettlement, ...]


@dataclass(frozen=True)
class OrderCancelled(OrderEvent):
    reason: str


@dataclass(frozen=True)
class OrderPartiallyCancelled(OrderEvent):
    """Cancelled after some parcels left: the others were stopped, and the order goes
    on with what shipped."""

    reason: str
    cancelled_lines: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class CancellationAbandoned(OrderEvent):
    """The parcel left before the cancellation reached the warehouse."""

    reason: str


@dataclass(frozen=True)
class OrderRequiresAttention(OrderEvent):
    reason: str
    pending: tuple[str, ...]


@dataclass(frozen=True)
class OperatorRetried(OrderEvent):
    operator: str


@dataclass(frozen=True)
class CompensationForced(OrderEvent):
    operator: str
    skipped: tuple[str, ...]


@dataclass(frozen=True)
class StockReleased(OrderEvent):
    pass


@dataclass(frozen=True)
class PaymentVoided(OrderEvent):
    """The hold on the card was released."""


@dataclass(frozen=True)
class PaymentRefunded(OrderEvent):
    """Money already captured went back to the customer."""

    amount: int


@dataclass(frozen=True)
class ShipmentCancelled(OrderEvent):
    fulfillment_id: str | None = None


@dataclass(frozen=True)
class StockCommitted(OrderEvent):
    fulfillment_id: str | None = None


@dataclass(frozen=True)
class PaymentCaptured(OrderEvent):
    amount: int
    fulfillment_id: str | None = None


@dataclass(frozen=True)
class StepUnanswered(OrderEvent):
    """A step another service could not get done for want of an answer (its gateway
    was down): the step's deadline asks again."""

    step: str
    error: str


@dataclass(frozen=True)
class ReplyIgnored(OrderEvent):
    """A reply that no longer changes anything (a duplicate, or too late)."""

    reply: str


@dataclass(frozen=True)
class ShippingAddressChanged(OrderEvent):
    pass


@dataclass(frozen=True)
class ShippingAddressChangeRequested(OrderEvent):
    """The dispatch note exists (or is on its way): shipping must agree first."""


@dataclass(frozen=True)
class ShippingAddressChangeRefused(OrderEvent):
    reason: str


@dataclass(frozen=True)
class OrderDeleted(OrderEvent):
    pass


@dataclass(frozen=True)
class AmendmentStarted(OrderEvent):
    """New items asked for: first keep the parcel in the warehouse."""

    lines: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class AmendmentStockRequested(OrderEvent):
    lines: tuple[tuple[str, int], ...]
    country: str | None = None


@dataclass(frozen=True)
class AmendmentPaymentRequested(OrderEvent):
    amount: int


@dataclass(frozen=True)
class AmendmentShipmentUpdateRequested(OrderEvent):
    lines: tuple[tuple[str, int], ...]
    # (fulfillment id, location, lines) of every parcel the order is to have.
    parcels: tuple[tuple[str, str, tuple[tuple[str, int], ...]], ...] = ()


@dataclass(frozen=True)
class AmendmentStockRevertRequested(OrderEvent):
    lines: tuple[tuple[str, int], ...]
    country: str | None = None


@dataclass(frozen=True)
class AmendmentShipmentReleaseRequested(OrderEvent):
    pass


@dataclass(frozen=True)
class OrderAmended(OrderEvent):
    total: int


@dataclass(frozen=True)
class AmendmentRejected(OrderEvent):
    reason: str
    skus: tuple[str, ...] = ()
