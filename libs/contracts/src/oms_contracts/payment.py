"""Commands the payment service accepts and the events it publishes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from oms_contracts.common import Currency, MinorUnits
from oms_contracts.envelope import Command, Event


class AuthorizePayment(Command):
    routing_key = "payment.authorize_payment"
    order_id: str
    amount: MinorUnits
    currency: Currency
    payment_token: str


class CapturePayment(Command):
    """Settle the authorized amount (sent when the shipment is dispatched)."""

    routing_key = "payment.capture_payment"
    order_id: str
    # One parcel's share of the authorization (a partial capture, keyed per parcel);
    # None: whatever is authorized and not yet captured.
    amount: MinorUnits | None = None
    fulfillment_id: str | None = None


class VoidPayment(Command):
    """Compensation: give the customer's money back. Releases the hold if the
    payment is only authorized, refunds what was captured otherwise."""

    routing_key = "payment.void_payment"
    order_id: str
    reason: str
    # What the order keeps: the parcels that left (captured, or to be captured). The
    # authorization above it is released once those captures are in; money captured
    # above it is refunded. 0: give everything back.
    keep_amount: MinorUnits = 0


class PaymentAuthorized(Event):
    routing_key = "payment.authorized"
    order_id: str
    payment_id: str
    amount: MinorUnits
    currency: Currency


class PaymentAuthorizationFailed(Event):
    routing_key = "payment.authorization_failed"
    order_id: str
    payment_id: str
    reason: str  # payment_declined | payment_unavailable
    decline_code: str | None = None


class PaymentCaptured(Event):
    routing_key = "payment.captured"
    order_id: str
    payment_id: str
    amount: MinorUnits
    currency: Currency
    # `amount` is this capture's; several parcels make several captures.
    fulfillment_id: str | None = None
    captured_total: MinorUnits | None = None


class PaymentVoided(Event):
    routing_key = "payment.voided"
    order_id: str
    payment_id: str


class PaymentRefunded(Event):
    routing_key = "payment.refunded"
    order_id: str
    payment_id: str
    refund_id: str
    amount: MinorUnits
    refunded_total: MinorUnits
    currency: Currency
    # The return this refund is for (None: a cancellation's, or staff's).
    return_id: str | None = None


class PaymentCompensationFailed(Event):
    """The gateway kept refusing or not answering a void/refund."""

    routing_key = "payment.void_failed"
    order_id: str
    payment_id: str
    error: str
    # The gateway did not answer within the payment service's retries (it was down or
    # unreachable), as opposed to refusing: asking again later may well succeed.
    retryable: bool = False


class PaymentCaptureFailed(Event):
    routing_key = "payment.capture_failed"
    order_id: str
    payment_id: str
    error: str
    # As for void_failed: no answer from the gateway, not a refusal.
    retryable: bool = False
    fulfillment_id: str | None = None


class ReauthorizePayment(Command):
    """The order's total changed before capture: hold the new amount instead (a new
    authorization; the old hold is released once the new one stands)."""

    routing_key = "payment.reauthorize_payment"
    order_id: str
    amount: MinorUnits


class PaymentReauthorized(Event):
    routing_key = "payment.reauthorized"
    order_id: str
    payment_id: str
    amount: MinorUnits
    currency: Currency


class PaymentReauthorizationFailed(Event):
    routing_key = "payment.reauthorization_failed"
    order_id: str
    payment_id: str
    reason: str


class RefundReturn(Command):
    """Refund what a return brought back, from the captured money. `attempt` grows
    only when an operator retries after the gateway refused: a refused refund moved
    no money, so the next attempt may be a new one at the gateway; redeliveries of
    the same attempt refund once."""

    routing_key = "payment.refund_return"
    order_id: str
    return_id: str
    amount: Annotated[int, Field(gt=0)]
    attempt: Annotated[int, Field(ge=0)] = 0


class RefundFailed(Event):
    """The gateway kept refusing a return's refund (or it exceeds what is left)."""

    routing_key = "payment.refund_failed"
    order_id: str
    payment_id: str | None = None
    return_id: str
    error: str
