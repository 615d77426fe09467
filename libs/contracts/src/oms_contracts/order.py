"""Events published by the order service as an order moves through its saga."""

from __future__ import annotations

from datetime import datetime

from oms_contracts.common import (
    Currency,
    LocationCode,
    MinorUnits,
    OrderLine,
    Parcel,
    ReturnLine,
    ShippingAddress,
)
from oms_contracts.envelope import Event


class OrderCreated(Event):
    routing_key = "order.created"
    order_id: str
    customer_id: str
    lines: list[OrderLine]
    shipping_address: ShippingAddress
    created_at: datetime


class OrderAwaitingPayment(Event):
    routing_key = "order.awaiting_payment"
    order_id: str
    total: MinorUnits
    currency: Currency


class OrderPaid(Event):
    routing_key = "order.paid"
    order_id: str
    payment_id: str
    total: MinorUnits
    currency: Currency


class OrderFulfilling(Event):
    routing_key = "order.fulfilling"
    order_id: str
    # The first parcel's shipment; `parcels` lists them all.
    shipment_id: str
    parcels: list[Parcel] = []


class OrderPartiallyShipped(Event):
    """One parcel of several left the warehouse; others have not yet."""

    routing_key = "order.partially_shipped"
    order_id: str
    fulfillment_id: str
    location: LocationCode
    carrier: str
    tracking_number: str


class OrderShipped(Event):
    """Every parcel left (or, after a cancellation, every parcel that will)."""

    routing_key = "order.shipped"
    order_id: str
    # The first parcel's; each parcel's are in the order's `fulfillments`.
    carrier: str
    tracking_number: str


class OrderCompleted(Event):
    routing_key = "order.completed"
    order_id: str


class OrderRejected(Event):
    routing_key = "order.rejected"
    order_id: str
    reason: str
    skus: list[str] = []


class OrderCancelled(Event):
    routing_key = "order.cancelled"
    order_id: str
    reason: str


class OrderPartiallyCancelled(Event):
    """Cancelled after some parcels left: the others were stopped, their stock
    released and the rest of the payment's authorization voided; the order goes on
    with what shipped."""

    routing_key = "order.partially_cancelled"
    order_id: str
    reason: str
    cancelled_lines: list[OrderLine]


class OrderRequiresAttention(Event):
    """A compensation or settlement keeps failing; an operator has to look."""

    routing_key = "order.requires_attention"
    order_id: str
    reason: str
    pending: list[str] = []


class OrderAmended(Event):
    """The order's items changed (stock, payment and dispatch note all agree)."""

    routing_key = "order.amended"
    order_id: str
    lines: list[OrderLine]
    total: MinorUnits
    currency: Currency


class OrderDeleted(Event):
    """The order was deleted by its customer or staff: its personal data (name,
    address) is erased; subscribers should erase their copies too. Financial facts
    (lines, totals) are kept for bookkeeping."""

    routing_key = "order.deleted"
    order_id: str


class OrderReturnRequested(Event):
    """A customer (or staff for them) asked to send goods back."""

    routing_key = "order.return_requested"
    order_id: str
    return_id: str
    lines: list[ReturnLine]
    reason: str


class OrderReturnApproved(Event):
    routing_key = "order.return_approved"
    order_id: str
    return_id: str


class OrderReturnRejected(Event):
    routing_key = "order.return_rejected"
    order_id: str
    return_id: str
    reason: str


class OrderReturnCancelled(Event):
    """Called off before the goods arrived (by the customer, or the parcel never
    came): nothing is refunded."""

    routing_key = "order.return_cancelled"
    order_id: str
    return_id: str
    reason: str


class OrderReturnRefunded(Event):
    routing_key = "order.return_refunded"
    order_id: str
    return_id: str
    amount: MinorUnits
    currency: Currency


class OrderReturnRequiresAttention(Event):
    """The refund of a return keeps failing; an operator has to look."""

    routing_key = "order.return_requires_attention"
    order_id: str
    return_id: str
    reason: str
